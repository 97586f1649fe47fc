"""Does the benchmark runner tell the truth? Three checks, side by side, in one run.

1. Overhead: the runner's p50 (a fresh child process per measurement) against a bare
   `session.run` loop in this process ("bare here"), same model, feeds, session options and
   run count; and against the same bare loop in a fresh python that imports only numpy and
   onnxruntime ("bare fresh"), which separates the harness's cost from the state of a
   long-lived process. Rounds rotate which side goes first so machine drift hits all three.
   Each round gives one p50 per side; "best" is the lowest over the rounds (the least
   disturbed round, timeit's rule: robust on a shared machine), "median" the middle one. Models: the digits student (int8, from the default
   recipe's cache: built on first use, ~30 s) and a 20 MB MLP built here with onnx.helper.
2. Peak RSS: the runner's child run under `/usr/bin/time -v`; its own VmHWM against time's
   "Maximum resident set size" for that same process.
3. The cost model's MACs for the MLP against the hand count.

    python scripts/bench_overhead.py [--rounds 12] [--runs 300]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MLP_WIDTHS = (1024, 2048, 1024, 1024, 10)  # 5.25 M float32 weights: 21 MB


def digits_student(cache: str | None) -> Path:
    """Built in a subprocess: the pipeline imports torch, which this process must not carry
    into the bare loop (a heavier process is not the bare reference we want)."""
    cmd = [sys.executable, __file__, "--build-student"] + (["--cache-dir", cache] if cache else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return Path(out.stdout.strip().splitlines()[-1]).resolve()


def _build_student(cache: str | None) -> Path:
    from packager.pipeline import plan, run
    from packager.progress import SilentReporter
    from packager.recipe import load_recipe

    recipe = load_recipe(ROOT / "models/digits.yaml")
    steps = [s for s in plan(recipe) if s.name not in ("evaluate", "bench", "package")]
    result = run(recipe, steps=steps, cache_dir=cache, reporter=SilentReporter())
    return result.artifact("quantize").file()


def mlp(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i, (a, b) in enumerate(itertools.pairwise(MLP_WIDTHS)):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"W{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"h{i}"]))
        prev = f"h{i}"
        if i < len(MLP_WIDTHS) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes,
        "mlp20mb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", MLP_WIDTHS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", MLP_WIDTHS[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "mlp20mb.onnx"
    onnx.save(model, path)
    return path


def bare_p50(path: Path, warmup: int, runs: int) -> float:
    """The same loop as the child's, with nothing around it: session options, seeded feeds."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for node in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in node.shape]
        feeds[node.name] = rng.standard_normal(shape, dtype=np.float32)
    sess.run(None, feeds)
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            sess.run(None, feeds)
            times.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        gc.enable()
    return float(np.percentile(times, 50))


def fresh_bare_p50(path: Path, warmup: int, runs: int) -> float:
    """The bare loop in a fresh python that imports only numpy and onnxruntime."""
    cmd = [sys.executable, __file__, "--bare", str(path), "--warmup", str(warmup)]
    out = subprocess.run([*cmd, "--runs", str(runs)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def overhead(path: Path, rounds: int, runs: int, warmup: int) -> dict[str, list[float]]:
    from packager.bench import run_one

    sides = {
        "runner": lambda: run_one(path, threads=1, warmup=warmup, runs=runs)["latency_ms"]["p50"],
        "bare here": lambda: bare_p50(path, warmup, runs),
        "bare fresh": lambda: fresh_bare_p50(path, warmup, runs),
    }
    out: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(rounds):
        order = list(sides)[i % 3 :] + list(sides)[: i % 3]  # rotate who goes first
        for name in order:
            out[name].append(sides[name]())
    return out


def timer_pair_us(n: int = 200_000) -> float:
    """What the child's timed window adds around session.run: two perf_counter_ns calls."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        a = time.perf_counter_ns()
        b = time.perf_counter_ns()
    del a, b
    return (time.perf_counter_ns() - t0) / n / 1e3


def rss_vs_time(path: Path, tmp: Path) -> tuple[float, float] | None:
    from packager.bench.runner import CHILD

    gnu_time = shutil.which("time", path="/usr/bin")
    if gnu_time is None:
        return None
    spec = tmp / "spec.json"
    spec.write_text(json.dumps({"model": str(path), "runs": 50, "warmup": 5}))
    proc = subprocess.run(
        [gnu_time, "-v", sys.executable, str(CHILD), str(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    child = json.loads(proc.stdout.splitlines()[-1])["peak_rss_mb"]
    line = next(x for x in proc.stderr.splitlines() if "Maximum resident set size" in x)
    return child, int(line.rsplit(":", 1)[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=12, help="alternating runner/bare rounds")
    ap.add_argument("--runs", type=int, default=300, help="timed runs per measurement")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--cache-dir", help="stage cache for the digits build [default: .edgepack]")
    ap.add_argument("--build-student", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bare", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare:
        print(bare_p50(Path(args.bare), args.warmup, args.runs))
        return
    if args.build_student:
        print(_build_student(args.cache_dir))
        return

    from packager.bench import host_info
    from packager.bench.costmodel import analyze

    info = host_info()
    print(
        f"machine: {info['cpu']}, {info['usable_cores']} usable cores, onnxruntime {info['onnxruntime']}"
    )
    print(f"{args.rounds} alternating rounds x {args.runs} timed runs, 1 thread, batch 1\n")
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "digits student (int8)": digits_student(args.cache_dir),
            "20 MB MLP (fp32)": mlp(Path(tmp)),
        }
        print(
            f"{'model':<23}{'MB':>6}{'p50 of rounds':>14}{'runner ms':>11}{'bare here':>11}"
            f"{'runner adds':>13}{'bare fresh':>12}{'runner adds':>13}"
        )
        p50s_of = {}
        for name, path in models.items():
            p50s = p50s_of[name] = overhead(path, args.rounds, args.runs, args.warmup)
            size = f"{path.stat().st_size / 1e6:.2f}"
            for stat, f in (("best", min), ("median", statistics.median)):
                r, here, fresh = (f(p50s[k]) for k in ("runner", "bare here", "bare fresh"))
                head = f"{name:<23}{size:>6}" if stat == "best" else " " * 29
                print(
                    f"{head}{stat:>14}{r:>11.4f}{here:>11.4f}{(r / here - 1) * 100:>+12.1f}%"
                    f"{fresh:>12.4f}{(r / fresh - 1) * 100:>+12.1f}%"
                )
        print()
        timer_us = timer_pair_us()
        digits_p50 = min(p50s_of["digits student (int8)"]["bare here"]) * 1e3
        print(
            f"inside the runner's timed window besides session.run: one perf_counter_ns pair, "
            f"{timer_us:.3f} us = {timer_us / digits_p50 * 100:.2f}% of the digits student's p50"
        )
        assert "torch" not in sys.modules, "the bare loop must run in a torch-free process"
        rss = rss_vs_time(models["20 MB MLP (fp32)"], Path(tmp))
        if rss is None:
            print("peak RSS: /usr/bin/time missing (apt install time)")
        else:
            child, gnu = rss
            print(
                f"peak RSS of one child on the MLP: runner (VmHWM) {child:.1f} MB, "
                f"/usr/bin/time -v {gnu:.1f} MB, difference {(child / gnu - 1) * 100:+.2f}%"
            )
        macs = analyze(models["20 MB MLP (fp32)"]).macs
        hand = sum(a * b for a, b in itertools.pairwise(MLP_WIDTHS))
        print(f"cost model MACs of the MLP at batch 1: {macs:,} (hand count {hand:,})")


if __name__ == "__main__":
    main()

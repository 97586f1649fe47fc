"""Does the benchmark runner tell the truth? Three checks, side by side, in one run.

1. Overhead: the runner's p50 (run_one: a fresh child process per measurement) against a bare
   `session.run` loop in this process. The bare loop is built from the child's own code
   (packager/bench/child.py's session options and seeded feeds, from the same spec), so the
   threads, inter-op threads, execution mode and graph optimization level are identical; the
   script checks the two recorded session options match. The two are interleaved in many
   short rounds (runner then bare, who goes first alternating per round) so that load from
   other processes on a shared machine drifts over both alike. Reported per model:
   - the median of the per-round p50s of each side, and their ratio;
   - the per-round paired ratio runner/bare: median, interquartile range and a
     distribution-free 95% confidence interval of the median (binomial order statistics).
   "runner adds < 3%" is shown when that interval's upper end is below 1.03.
   Models: the digits student (int8, from the default recipe's cache: built on first use,
   ~30 s) and a 20 MB MLP built here with onnx.helper.
2. Peak RSS: the runner's child run under `/usr/bin/time -v`; its own VmHWM against time's
   "Maximum resident set size" for that same process.
3. The cost model's MACs for the MLP against the hand count.

The machine's load is printed too: CPU time used by other processes during the run.

    .venv/bin/python scripts/bench_overhead.py [--rounds 40] [--seconds 0.25] [--runs 5000]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import resource
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
    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.progress import SilentReporter
    from packager.recipe import load_recipe

    recipe = load_recipe(ROOT / "models/digits.yaml")
    steps = [s for s in build_plan(recipe) if s.name not in ("evaluate", "bench", "package")]
    result = run(steps, cache_dir=cache, reporter=SilentReporter())
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


def _spec(path: Path, warmup: int, runs: int, seconds: float) -> dict:
    """The spec run_one sends its child (threads 1, batch 1, its defaults for the rest)."""
    from packager.bench import child

    return {
        **child._DEFAULTS,
        "model": str(path),
        "warmup": warmup,
        "runs": runs,
        "seconds": seconds,
    }


def bare_p50(path: Path, warmup: int, runs: int, seconds: float) -> tuple[float, dict]:
    """The child's timed loop with nothing around it, in this process: the child's own session
    options and feeds for the same spec; (p50 ms, the session options it recorded)."""
    import onnxruntime as ort

    from packager.bench import child

    spec = _spec(path, warmup, runs, seconds)
    opts, recorded = child._session_options(spec, ort)
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    feeds, _ = child._generate_feeds(sess, spec["batch"], spec["dims"], np)
    sess.run(None, feeds)
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    budget = int(seconds * 1e9)
    gc.collect()
    gc.disable()  # as the child does; and the same stopping rule: runs or seconds
    try:
        start = time.perf_counter_ns()
        while True:
            t0 = time.perf_counter_ns()
            sess.run(None, feeds)
            t1 = time.perf_counter_ns()
            times.append((t1 - t0) / 1e6)
            if len(times) >= runs or t1 - start >= budget:
                break
    finally:
        gc.enable()
    return float(np.percentile(times, 50)), recorded


def runner_p50(path: Path, warmup: int, runs: int, seconds: float) -> tuple[float, dict]:
    from packager.bench import run_one

    r = run_one(path, threads=1, batch=1, warmup=warmup, runs=runs, seconds=seconds)
    return float(r["latency_ms"]["p50"]), r["session_options"]


def overhead(
    path: Path, rounds: int, runs: int, seconds: float, warmup: int
) -> dict[str, list[float]]:
    sides = {"runner": runner_p50, "bare": bare_p50}
    out: dict[str, list[float]] = {name: [] for name in sides}
    options = {}
    for i in range(rounds):
        order = ["runner", "bare"] if i % 2 == 0 else ["bare", "runner"]
        for name in order:
            p50, options[name] = sides[name](path, warmup, runs, seconds)
            out[name].append(p50)
    if options["runner"] != options["bare"]:
        raise SystemExit(f"session options differ: {options}")
    return out


def median_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median: order statistics k and n-k+1 with
    P(Binomial(n, 1/2) < k) <= (1 - level) / 2."""
    xs, n = sorted(values), len(values)
    tail, k, cum = (1 - level) / 2, 0, 0.0
    while k < n and cum + math.comb(n, k) / 2**n <= tail:
        cum += math.comb(n, k) / 2**n
        k += 1
    if k == 0:  # too few rounds for this level
        return xs[0], xs[-1]
    return xs[k - 1], xs[n - k]


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


class Load:
    """CPU time of every process on the machine vs ours (this process and its children)."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self.t0, self.busy0, self.ours0 = time.monotonic(), self._busy(), self._ours()

    def _busy(self) -> float:
        t = self._psutil.cpu_times()
        return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

    @staticmethod
    def _ours() -> float:
        me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def others_cores(self) -> tuple[float, float]:
        """(cores' worth of CPU used by other processes, by this run), averaged over the run."""
        wall = time.monotonic() - self.t0
        busy, ours = self._busy() - self.busy0, self._ours() - self.ours0
        return max(busy - ours, 0.0) / wall, ours / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40, help="interleaved runner/bare rounds")
    ap.add_argument("--runs", type=int, default=5000, help="max timed runs per side per round")
    ap.add_argument("--seconds", type=float, default=0.25, help="max timed seconds per side")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--cache-dir", help="stage cache for the digits build [default: .edgepack]")
    ap.add_argument("--build-student", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_student:
        print(_build_student(args.cache_dir))
        return

    from packager.bench import host_info
    from packager.bench.costmodel import analyze

    info = host_info()
    cores = os.cpu_count() or 1
    print(
        f"machine: {info['cpu']}, {info['usable_cores']} usable cores, onnxruntime "
        f"{info['onnxruntime']}; load average before: {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{args.rounds} interleaved rounds, each side {args.runs} timed runs or "
        f"{args.seconds:g} s (whichever ends first), 1 thread, batch 1, graph optimization all, "
        "sequential, same seeded feeds\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "digits student (int8)": digits_student(args.cache_dir),
            "20 MB MLP (fp32)": mlp(Path(tmp)),
        }
        load = Load()
        head = (
            f"{'model':<23}{'MB':>6}{'runner p50':>12}{'bare p50':>10}{'ratio':>8}"
            f"{'paired median':>15}{'IQR':>17}{'95% CI':>17}  runner adds < 3%?"
        )
        print(head)
        p50s_of = {}
        for name, path in models.items():
            p50s = p50s_of[name] = overhead(path, args.rounds, args.runs, args.seconds, args.warmup)
            r, b = statistics.median(p50s["runner"]), statistics.median(p50s["bare"])
            paired = [x / y for x, y in zip(p50s["runner"], p50s["bare"], strict=True)]
            q1, _, q3 = statistics.quantiles(paired, n=4)
            lo, hi = median_ci(paired)
            verdict = "yes" if hi < 1.03 else "not shown"
            print(
                f"{name:<23}{path.stat().st_size / 1e6:>6.2f}{r:>10.4f}ms{b:>8.4f}ms"
                f"{(r / b - 1) * 100:>+7.1f}%{(statistics.median(paired) - 1) * 100:>+14.1f}%"
                f"{f'{(q1 - 1) * 100:+.1f}..{(q3 - 1) * 100:+.1f}%':>17}"
                f"{f'{(lo - 1) * 100:+.1f}..{(hi - 1) * 100:+.1f}%':>17}  {verdict}"
            )
        others, ours = load.others_cores()
        print(
            f"\nduring the rounds: other processes used {others:.2f} of {cores} cores on average, "
            f"this run {ours:.2f}; load average after: {os.getloadavg()[0]:.2f}"
            + (
                " (a busy machine: the spread above includes their interference)"
                if others > 0.25
                else ""
            )
        )
        timer_us = timer_pair_us()
        digits_p50 = statistics.median(p50s_of["digits student (int8)"]["bare"]) * 1e3
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

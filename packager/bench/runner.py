"""Run benchmarks in child processes and turn their reports into result records.

Each configuration gets a fresh `python child.py` so that its session creation is a
true cold start and its peak RSS is its own; a crash or hang in onnxruntime costs
that one child, never the caller.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packager.bench.errors import BenchError
from packager.bench.machine import host_info
from packager.bench.stats import summarize

SCHEMA = "edgepack.bench/1"
CHILD = Path(__file__).with_name("child.py")

Progress = Callable[[int, int, dict], None]


def run_one(
    model_path: str | os.PathLike[str],
    *,
    threads: int = 1,
    batch: int = 1,
    warmup: int = 10,
    runs: int | None = 100,
    seconds: float | None = None,
    inputs: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
    timeout: float = 600,
    keep_raw: bool = False,
    graph_optimization: str = "all",
    inter_op_threads: int = 1,
) -> dict[str, Any]:
    """Benchmark one model in one child process and return a `measured` result record.

    `runs` caps the number of timed runs and `seconds` their total time; the child stops
    at whichever comes first and always times at least one run. `inputs` is an .npz path
    or a mapping of input name -> array; None generates seeded feeds from the model's
    I/O spec, binding a symbolic first dimension to `batch` and named symbolic
    dimensions through `dims` (others become 1). Raises BenchError, with a one-line
    message, when the child fails, crashes, prints no JSON or outlives `timeout` seconds.
    """
    if runs is None and seconds is None:
        raise BenchError("run_one needs runs or seconds (or both) to know when to stop")
    if threads < 1 or batch < 1 or warmup < 0 or (runs is not None and runs < 1):
        raise BenchError(
            f"threads and batch must be >= 1, warmup >= 0 and runs >= 1; got threads={threads} "
            f"batch={batch} warmup={warmup} runs={runs}"
        )
    model = Path(model_path).expanduser().resolve()
    spec: dict[str, Any] = {
        "model": str(model),
        "threads": int(threads),
        "inter_op_threads": int(inter_op_threads),
        "graph_optimization": graph_optimization,
        "batch": int(batch),
        "dims": {str(k): int(v) for k, v in (dims or {}).items()},
        "warmup": int(warmup),
        "runs": None if runs is None else int(runs),
        "seconds": None if seconds is None else float(seconds),
        "inputs": None,
    }
    with tempfile.TemporaryDirectory(prefix="edgepack-bench-") as tmp:
        if isinstance(inputs, Mapping):
            import numpy as np

            feeds_path = Path(tmp, "inputs.npz")
            np.savez(feeds_path, **{name: np.asarray(value) for name, value in inputs.items()})
            spec["inputs"] = str(feeds_path)
        elif inputs is not None:
            spec["inputs"] = str(Path(inputs).expanduser().resolve())
        spec_path = Path(tmp, "spec.json")
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        report = _launch(spec_path, model.name, timeout, cwd=tmp)
    try:
        return _result(model, spec, report, keep_raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchError(f"benchmark of {model.name} returned a malformed report: {exc!r}") from exc


def run_many(configs: list[dict], progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run configs one after another (never in parallel: they would share the cores).

    Each config holds run_one's keyword arguments plus the model under "model" (or
    "model_path"). `progress(i, n, config)` is called before config i (0-based) starts.
    A failing config raises BenchError naming its position.
    """
    results = []
    n = len(configs)
    for i, config in enumerate(configs):
        if progress is not None:
            progress(i, n, config)
        kwargs = dict(config)
        model = kwargs.pop("model", None) or kwargs.pop("model_path", None)
        if model is None:
            raise BenchError(f"config {i + 1}/{n} has no 'model': {config}")
        try:
            results.append(run_one(model, **kwargs))
        except BenchError as exc:
            raise BenchError(f"config {i + 1}/{n} ({Path(model).name}): {exc}") from exc
    return results


def _launch(spec_path: Path, label: str, timeout: float, cwd: str) -> dict[str, Any]:
    """Run the child on `spec_path` and return its parsed report, or raise BenchError."""
    try:
        proc = subprocess.run(
            [sys.executable, str(CHILD), str(spec_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"benchmark of {label} timed out after {timeout:g} s; lower runs/seconds or raise "
            f"timeout{_stderr_tail(exc.stderr)}"
        ) from None
    except OSError as exc:
        raise BenchError(f"could not start the benchmark child {sys.executable}: {exc}") from exc

    report = _parse_report(proc.stdout)
    tail = _stderr_tail(proc.stderr)
    if proc.returncode < 0:
        name = _signal_name(-proc.returncode)
        hint = " (likely the out-of-memory killer)" if name == "SIGKILL" else ""
        raise BenchError(f"benchmark of {label} was killed by {name}{hint}{tail}")
    if report is not None and not report.get("ok", False):
        raise BenchError(f"benchmark of {label} failed: {report.get('error', 'no reason')}{tail}")
    if proc.returncode != 0:
        raise BenchError(f"benchmark of {label} exited with status {proc.returncode}{tail}")
    if report is None:
        raise BenchError(f"benchmark of {label} printed no JSON report{tail}")
    return report


def _parse_report(stdout: str) -> dict[str, Any] | None:
    # The child prints exactly one JSON line; read the last line in case an interpreter
    # hook printed something before it.
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    if not lines:
        return None
    try:
        report = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return report if isinstance(report, dict) else None


def _stderr_tail(stderr: str | bytes | None) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", errors="replace")
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return f" (child stderr: {lines[-1][:300]})" if lines else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _result(model: Path, spec: dict, report: dict, keep_raw: bool) -> dict[str, Any]:
    latencies = report["latencies_ms"]
    peak, baseline = report.get("peak_rss_mb"), report.get("baseline_rss_mb")
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "measured",
        "machine": host_info(),
        "model": str(model),
        "file_size_mb": report["file_size_mb"],
        "threads": spec["threads"],
        "batch": spec["batch"],
        "warmup": spec["warmup"],
        "runs": report["runs"],
        "inputs": report["inputs"],
        "latency_ms": summarize(latencies, spec["batch"]),
        "session_ms": report["session_ms"],
        "first_run_ms": report["first_run_ms"],
        # What an app pays before its first answer: load the model, then run it once.
        "cold_start_ms": report["session_ms"] + report["first_run_ms"],
        "peak_rss_mb": peak,
        "baseline_rss_mb": baseline,
        "rss_source": report.get("rss_source"),
        # Growth of the high-water mark past the interpreter + imports: the model's cost.
        "model_rss_mb": None if peak is None or baseline is None else peak - baseline,
        "onnxruntime": report["onnxruntime"],
        "session_options": report["session_options"],
    }
    if keep_raw:
        result["latencies_ms"] = list(latencies)
    return result

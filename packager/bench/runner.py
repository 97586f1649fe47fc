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

from packager.bench import memcap
from packager.bench.errors import BenchError
from packager.bench.machine import host_info
from packager.bench.schema import SCHEMA, validate_result
from packager.bench.stats import summarize

CHILD = Path(__file__).with_name("child.py")
# A child under a memory cap that dies by one of these ran out of memory: SIGKILL is the
# cgroup OOM killer; SIGABRT/SIGSEGV are a native allocation failure nobody caught.
_OOM_SIGNALS = ("SIGKILL", "SIGABRT", "SIGSEGV")

Progress = Callable[[int, int, dict], None]


class _ChildFailed(BenchError):
    """The child failed; `oom` when it said an allocation failed, `signal` when it was killed."""

    def __init__(self, message: str, *, oom: bool = False, signal_name: str | None = None):
        super().__init__(message)
        self.oom = oom
        self.signal_name = signal_name


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
    memory_cap_mb: float | None = None,
    target: str = "host",
    emulates: str | None = None,
    lm: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Benchmark one model in one child process and return a result record (schema.py).

    `runs` caps the number of timed runs and `seconds` their total time; the child stops
    at whichever comes first and always times at least one run. `inputs` is an .npz path
    or a mapping of input name -> array; None generates seeded feeds from the model's
    I/O spec, binding a symbolic first dimension to `batch` and named symbolic
    dimensions through `dims` (others become 1). Raises BenchError, with a one-line
    message, when the child fails, crashes, prints no JSON or outlives `timeout` seconds.

    With `memory_cap_mb` the child runs under that cap (a cgroup v2 group where possible,
    else RLIMIT_AS); running out of memory then returns a record with status
    "does-not-fit" instead of raising. With `emulates` (a target profile name) the record's
    kind is "host-emulated", else "measured".
    """
    _check_options(threads, batch, warmup, runs, seconds, emulates, memory_cap_mb)
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
        "memory_cap_mb": memory_cap_mb,
        "cgroup": None,
        # A language model: tokens/s (prefill, decode, TTFT, inter-token) instead of runs.
        "lm": dict(lm) if lm else None,
    }
    context = {
        "kind": "host-emulated" if emulates else "measured",
        "target": target,
        "emulates": emulates,
        "input_source": "generated" if inputs is None else "given",
        "memory_cap": None,
    }
    with tempfile.TemporaryDirectory(prefix="edgepack-bench-") as tmp:
        if isinstance(inputs, Mapping):
            import numpy as np

            feeds_path = Path(tmp, "inputs.npz")
            np.savez(feeds_path, **{name: np.asarray(value) for name, value in inputs.items()})
            spec["inputs"] = str(feeds_path)
        elif inputs is not None:
            spec["inputs"] = str(Path(inputs).expanduser().resolve())
        try:
            report = _run_capped(spec, model, timeout, tmp, context)
        except _ChildFailed as exc:
            if context["memory_cap"] is None or not (exc.oom or exc.signal_name in _OOM_SIGNALS):
                raise
            return validate_result(_does_not_fit(model, spec, context, str(exc)))
    try:
        record = result_from_report(model, spec, report, keep_raw=keep_raw, **context)
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchError(f"benchmark of {model.name} returned a malformed report: {exc!r}") from exc
    return validate_result(record)


def _check_options(threads, batch, warmup, runs, seconds, emulates, memory_cap_mb) -> None:
    if runs is None and seconds is None:
        raise BenchError("run_one needs runs or seconds (or both) to know when to stop")
    if threads < 1 or batch < 1 or warmup < 0 or (runs is not None and runs < 1):
        raise BenchError(
            f"threads and batch must be >= 1, warmup >= 0 and runs >= 1; got threads={threads} "
            f"batch={batch} warmup={warmup} runs={runs}"
        )
    if emulates is not None and memory_cap_mb is None:
        raise BenchError(f"a host-emulated run of {emulates} needs a memory cap")


def _run_capped(
    spec: dict[str, Any], model: Path, timeout: float, tmp: str, context: dict[str, Any]
) -> dict[str, Any]:
    """Launch the child, inside a capped cgroup when one can be made; fills memory_cap."""
    cap = spec["memory_cap_mb"]
    spec_path = Path(tmp, "spec.json")
    if cap is None:
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        return _launch(spec_path, model.name, timeout, cwd=tmp)
    parent = memcap.cgroup_parent()
    if parent is not None:
        context["memory_cap"] = {"mb": float(cap), "mechanism": "cgroup-v2"}
        with memcap.capped_group(parent, cap) as group:
            spec_path.write_text(json.dumps({**spec, "cgroup": str(group.path)}), "utf-8")
            try:
                return _launch(spec_path, model.name, timeout, cwd=tmp)
            except _ChildFailed as exc:
                if group.oom_killed():
                    exc.oom = True
                raise
    context["memory_cap"] = {"mb": float(cap), "mechanism": "RLIMIT_AS"}
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    # One malloc arena: glibc would otherwise reserve 64 MB of address space per thread,
    # which RLIMIT_AS counts although it is never resident.
    env = {**os.environ, "MALLOC_ARENA_MAX": "1"}
    return _launch(spec_path, model.name, timeout, cwd=tmp, env=env)


def _does_not_fit(model: Path, spec: dict, context: dict, why: str) -> dict[str, Any]:
    cap = context["memory_cap"]
    detail = why.split(" failed: ", 1)[-1]
    return {
        "schema": SCHEMA,
        "kind": context["kind"],
        "status": "does-not-fit",
        "target": context["target"],
        "emulates": context["emulates"],
        "machine": host_info(),
        "model": str(model),
        "model_name": model.name,
        "file_size_mb": model.stat().st_size / 1e6,
        "threads": spec["threads"],
        "batch": spec["batch"],
        "input_source": context["input_source"],
        "memory_cap": cap,
        "message": f"does not fit in {cap['mb']:g} MB ({cap['mechanism']}): {detail}",
    }


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


def _launch(
    spec_path: Path, label: str, timeout: float, cwd: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run the child on `spec_path` and return its parsed report, or raise BenchError."""
    try:
        proc = subprocess.run(
            [sys.executable, str(CHILD), str(spec_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=env,
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
        raise _ChildFailed(
            f"benchmark of {label} was killed by {name}{hint}{tail}", signal_name=name
        )
    if report is not None and not report.get("ok", False):
        raise _ChildFailed(
            f"benchmark of {label} failed: {report.get('error', 'no reason')}{tail}",
            oom=bool(report.get("oom")),
        )
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


def guess_notes(guessed: Mapping[str, int]) -> list[str]:
    """The note every record carries when a symbolic input dim had to be guessed."""
    if not guessed:
        return []
    shown = ", ".join(f"{k}={v}" for k, v in guessed.items())
    return [f"symbolic dims not given, guessed: {shown} (give real values with --dim NAME=VALUE)"]


def result_from_report(
    model: Path,
    spec: dict[str, Any],
    report: dict[str, Any],
    *,
    keep_raw: bool = False,
    kind: str = "measured",
    target: str = "host",
    machine: dict[str, Any] | None = None,
    emulates: str | None = None,
    input_source: str = "generated",
    memory_cap: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn a child's JSON report into a result record (schema.SCHEMA).

    Public so that other launchers (ssh) build identical records: pass the remote machine's
    host_info() as `machine` and the ssh:// target.
    """
    latencies = report["latencies_ms"]
    peak, baseline = report.get("peak_rss_mb"), report.get("baseline_rss_mb")
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": kind,
        "status": "ok",
        "target": target,
        "machine": machine if machine is not None else host_info(),
        "model": str(model),
        "model_name": Path(model).name,
        "file_size_mb": report["file_size_mb"],
        "threads": spec["threads"],
        "batch": spec["batch"],
        "warmup": spec["warmup"],
        "runs": report["runs"],
        "inputs": report["inputs"],
        "input_source": input_source,
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
        "emulates": emulates,
        "memory_cap": memory_cap,
        "guessed_dims": report.get("guessed_dims") or {},
        "notes": guess_notes(report.get("guessed_dims") or {}),
    }
    if report.get("lm"):
        result["lm"] = report["lm"]
        result["notes"] = [*result["notes"], _LM_NOTE]
    if keep_raw:
        result["latencies_ms"] = list(latencies)
    return result


_LM_NOTE = (
    "language model: latency_ms is the inter-token latency of decode steps on the KV cache; "
    "first_run_ms is the time to first token; lm holds prefill/decode tokens per second"
)

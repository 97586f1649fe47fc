"""Benchmark one ONNX model in this process and print one JSON object on stdout.

Usage: ``python child.py SPEC.json`` (or the spec JSON on stdin).

This file is copied to devices and run with their own python, so it imports only
the standard library, numpy and onnxruntime, and never ``packager``. One process per
configuration: peak RSS is a process-wide high-water mark, so measuring two configs
in one process would make the second inherit the first's peak.

Spec keys (defaults in ``_DEFAULTS``):
  model               path to the .onnx file
  threads             intra-op threads
  inter_op_threads    inter-op threads (only used by the parallel executor; kept at 1)
  graph_optimization  "disable" | "basic" | "extended" | "layout" | "all"
  batch               bound to a symbolic first dimension
  dims                {"sequence": 128}: binds named symbolic dimensions; others are 1,
                      and the report's "guessed_dims" names them
  warmup              untimed runs after the first run
  runs, seconds       max timed runs and max timed seconds; whichever ends first,
                      at least one run; at least one of the two must be set
  inputs              path to an .npz of feeds, or null to generate them
  memory_cap_mb       host-emulated runs: cap this process's memory at N MiB
  cgroup              a cgroup v2 folder (memory.max already set) to join first; without
                      it the cap is applied as RLIMIT_AS after the imports (see _cap_memory)

Output: {"ok": true, "latencies_ms": [...], "session_ms", "first_run_ms", "peak_rss_mb",
"baseline_rss_mb", "rss_source", "file_size_mb", "runs", "onnxruntime", "session_options", "inputs"}
or {"ok": false, "error": "one line", "oom": bool} with exit status 1; "oom" is true when an
allocation failed, which under a memory cap means the model does not fit.
"""

import gc
import json
import os
import sys
import time

_DEFAULTS = {
    "threads": 1,
    "inter_op_threads": 1,
    "graph_optimization": "all",
    "batch": 1,
    "dims": {},
    "warmup": 10,
    "runs": 100,
    "seconds": None,
    "inputs": None,
    "memory_cap_mb": None,
    "cgroup": None,
    "lm": None,
}

_NUMPY_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(bool)": "bool",
}


class SpecError(Exception):
    """The spec or the model's inputs cannot be benchmarked as asked."""


class OutOfMemory(Exception):
    """The memory cap is already used up before the model is loaded."""


def _status_kb(*keys):
    """Values (KiB) of /proc/self/status fields; None for any that cannot be read."""
    found = dict.fromkeys(keys)
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in found:
                    found[key] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return [found[k] for k in keys]


def _join_cgroup(path):
    # Before the big imports, so everything this process maps is charged to the capped group.
    with open(os.path.join(path, "cgroup.procs"), "w", encoding="ascii") as f:
        f.write(str(os.getpid()))


def _cap_memory(cap_mb, threads):
    """Cap further growth with RLIMIT_AS so that resident memory stays under cap_mb.

    RLIMIT_AS limits address space, not resident memory, and python + onnxruntime already
    map ~150 MB they never touch. So the limit is set after the imports to what is mapped
    now plus what the cap leaves over resident memory now, plus a stack reservation per
    intra-op thread (reserved, mostly untouched). The parent sets MALLOC_ARENA_MAX=1 so that
    glibc does not reserve 64 MB of address space per thread. Near the cap this still errs
    toward "does not fit"; a cgroup, when available, measures resident memory exactly.
    """
    import resource

    size_kb, rss_kb = _status_kb("VmSize", "VmRSS")
    if size_kb is None or rss_kb is None:
        raise SpecError("cannot read /proc/self/status to apply the memory cap")
    left = cap_mb * 1024 * 1024 - rss_kb * 1024
    if left <= 0:
        raise OutOfMemory(
            f"python and onnxruntime alone use {rss_kb / 1024:.0f} MB before the model loads"
        )
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    stack = 8 * 1024 * 1024 if stack == resource.RLIM_INFINITY else stack
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    limit = size_kb * 1024 + int(left) + int(threads) * stack
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _rss_high_water_mb():
    """Peak RSS of this process so far in MB, and where it came from; (None, None) if unknown.

    On Linux this reads VmHWM, not getrusage's ru_maxrss: ru_maxrss survives fork + exec,
    so a child launched by a 2 GB parent would report the parent's 2 GB as its own peak.
    VmHWM belongs to the address space exec created, so it counts only this program.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "VmHWM"
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return (peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024), "ru_maxrss"


def _load_spec(argv):
    if len(argv) > 1:
        with open(argv[1], encoding="utf-8") as f:
            spec = json.load(f)
    else:
        spec = json.load(sys.stdin)
    if not isinstance(spec, dict) or not spec.get("model"):
        raise SpecError("spec must be a JSON object with a 'model' path")
    spec = {**_DEFAULTS, **spec}
    if spec["runs"] is None and spec["seconds"] is None:
        raise SpecError("spec needs 'runs' or 'seconds' (or both) to know when to stop")
    return spec


def bind_shape(name, shape, batch, dims, guessed):
    """Concrete dims for one input: fixed dims as they are, named symbolic dims from `dims`,
    the leading symbolic dim as the batch; any other symbolic dim is guessed as 1 and recorded
    in `guessed` (dim name -> value) so that the caller can say so."""
    bound = []
    for i, dim in enumerate(shape):
        if isinstance(dim, int) and dim >= 0:
            bound.append(dim)
        elif isinstance(dim, str) and dim in dims:
            bound.append(int(dims[dim]))
        elif i == 0:
            # By convention the leading symbolic dimension is the batch.
            bound.append(int(batch))
        else:
            key = dim if isinstance(dim, str) and dim else f"{name}[{i}]"
            guessed[key] = 1
            bound.append(1)
    return bound


def int_value(name, dtype, shape, rng, np):
    """An integer/bool input edgepack can honestly make up, by its name; None otherwise."""
    lname = name.lower()
    if "mask" in lname:
        return np.ones(shape, dtype=dtype)  # attend to everything
    if lname.endswith("input_ids"):
        # Small ids stay inside any vocabulary; zeros would all hit one embedding row.
        return rng.integers(0, 100, size=shape).astype(dtype)
    if lname.endswith(("token_type_ids", "segment_ids")):
        return np.zeros(shape, dtype=dtype)  # one segment: a real input, not a placeholder
    if lname.endswith("position_ids") and shape:
        return np.broadcast_to(np.arange(shape[-1]), shape).astype(dtype)
    return None


def session_feeds(session, batch, dims, np):
    """Seeded feeds for the session's inputs: floats standard normal; integers and bools only
    where the name says what they hold (int_value). Any other integer input is refused by
    name: a made-up value (a `lengths` of 0 masks everything) times a different model.
    Returns (feeds, shapes, guessed dims)."""
    # Seeded so that two configs of the same model see identical data: data-dependent
    # kernels (e.g. early-exit, sparse paths) then cannot explain a latency difference.
    rng = np.random.default_rng(0)
    feeds, shapes, guessed, refused = {}, {}, {}, []
    for node in session.get_inputs():
        dtype = _NUMPY_DTYPES.get(node.type)
        if dtype is None:
            raise SpecError(f"input {node.name!r} has type {node.type}: pass real feeds (.npz)")
        shape = bind_shape(node.name, node.shape, batch, dims, guessed)
        if dtype.startswith("float"):
            value = rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
        elif (value := int_value(node.name, dtype, shape, rng, np)) is None:
            refused.append(f"{node.name} ({dtype})")
            continue
        feeds[node.name], shapes[node.name] = value, shape
    if refused:
        raise SpecError(
            f"input(s) {', '.join(refused)} cannot be generated honestly (a made-up value such "
            "as a length of 0 changes what the model computes): pass real feeds, an .npz with "
            "one array per input name (--feeds FILE.npz)"
        )
    return feeds, shapes, guessed


def _load_feeds(path, session, np):
    with np.load(path, allow_pickle=False) as npz:
        feeds = {name: npz[name] for name in npz.files}
    expected = [node.name for node in session.get_inputs()]
    missing = [name for name in expected if name not in feeds]
    if missing:
        raise SpecError(f"the feeds lack input(s) {missing}; the model expects {expected}")
    types = {node.name: _NUMPY_DTYPES.get(node.type) for node in session.get_inputs()}
    out = {}
    for name in expected:
        value, want = feeds[name], types[name]
        # float64 feeds for a float32 input (numpy's default) are the same numbers, cast.
        if want and value.dtype.kind == np.dtype(want).kind and value.dtype != want:
            value = value.astype(want)
        out[name] = value
    return out, {name: list(value.shape) for name, value in out.items()}


def _session_options(spec, ort):
    levels = {
        "disable": "ORT_DISABLE_ALL",
        "basic": "ORT_ENABLE_BASIC",
        "extended": "ORT_ENABLE_EXTENDED",
        "layout": "ORT_ENABLE_LAYOUT",
        "all": "ORT_ENABLE_ALL",
    }
    level = levels.get(spec["graph_optimization"])
    if level is None or not hasattr(ort.GraphOptimizationLevel, level):
        raise SpecError(
            f"graph_optimization {spec['graph_optimization']!r} is not supported by "
            f"onnxruntime {ort.__version__}; use one of {sorted(levels)}"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(spec["threads"])
    opts.inter_op_num_threads = int(spec["inter_op_threads"])
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    # Fatal only: its own error log would repeat (in colour, on stderr) the one line we report.
    opts.log_severity_level = 4
    recorded = {
        "intra_op_num_threads": opts.intra_op_num_threads,
        "inter_op_num_threads": opts.inter_op_num_threads,
        "execution_mode": "sequential",
        "graph_optimization": spec["graph_optimization"],
        "providers": ["CPUExecutionProvider"],
    }
    return opts, recorded


def _ms(ns):
    return ns / 1e6


def measure(spec):
    """Run the benchmark described by `spec` (already merged with defaults)."""
    if spec["cgroup"]:
        _join_cgroup(spec["cgroup"])
    import numpy as np
    import onnxruntime as ort

    model = spec["model"]
    if not os.path.isfile(model):
        raise SpecError(f"model file not found: {model}")
    opts, recorded = _session_options(spec, ort)
    if spec["memory_cap_mb"] and not spec["cgroup"]:
        _cap_memory(float(spec["memory_cap_mb"]), spec["threads"])

    gc.collect()
    baseline_mb, _ = _rss_high_water_mb()
    t0 = time.perf_counter_ns()
    session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    session_ns = time.perf_counter_ns() - t0
    if spec["lm"]:  # a decoder with a KV cache: tokens per second (lm_child.py, beside this)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        lm_report = __import__("lm_child").lm_report
        return lm_report(spec, session, _ms(session_ns), baseline_mb, recorded, _rss_high_water_mb)

    guessed = {}
    if spec["inputs"]:
        feeds, shapes = _load_feeds(spec["inputs"], session, np)
    else:
        feeds, shapes, guessed = session_feeds(session, spec["batch"], spec["dims"] or {}, np)

    t0 = time.perf_counter_ns()
    try:
        session.run(None, feeds)
    except Exception as exc:
        if not guessed:
            raise
        shown = ", ".join(f"{k}={v}" for k, v in guessed.items())
        raise SpecError(
            f"{_one_line(exc)}; symbolic dims were guessed ({shown}): give their real values "
            "(--dim NAME=VALUE) or real feeds (--feeds FILE.npz)"
        ) from None
    first_ns = time.perf_counter_ns() - t0

    for _ in range(int(spec["warmup"])):
        session.run(None, feeds)

    max_runs = int(spec["runs"]) if spec["runs"] is not None else sys.maxsize
    budget_ns = int(spec["seconds"] * 1e9) if spec["seconds"] is not None else None
    latencies = []
    # A collection pause inside a timed run is the harness's cost, not the model's.
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        while True:
            t0 = time.perf_counter_ns()
            session.run(None, feeds)
            t1 = time.perf_counter_ns()
            latencies.append(_ms(t1 - t0))
            if len(latencies) >= max_runs or (budget_ns is not None and t1 - start >= budget_ns):
                break
    finally:
        gc.enable()

    peak_mb, rss_source = _rss_high_water_mb()
    return {
        "ok": True,
        "latencies_ms": latencies,
        "runs": len(latencies),
        "session_ms": _ms(session_ns),
        "first_run_ms": _ms(first_ns),
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": baseline_mb,
        "rss_source": rss_source,
        "file_size_mb": os.path.getsize(model) / 1e6,
        "onnxruntime": ort.__version__,
        "session_options": recorded,
        "inputs": shapes,
        "guessed_dims": guessed,
    }


def _is_oom(exc):
    text = str(exc)
    # onnxruntime reports its own allocation failures as a generic runtime error.
    return isinstance(exc, (MemoryError, OutOfMemory)) or any(
        marker in text for marker in ("bad_alloc", "Failed to allocate", "Unable to allocate")
    )


def _one_line(exc):
    text = " ".join(str(exc).split()) or repr(exc)
    if _is_oom(exc):
        prefix = "out of memory"
    elif isinstance(exc, SpecError):
        prefix = ""
    else:
        prefix = type(exc).__name__
    line = f"{prefix}: {text}" if prefix else text
    return line[:500]


def main(argv=None):
    argv = sys.argv if argv is None else argv
    # Native code (onnxruntime, BLAS) may print to fd 1; send fd 1 to stderr while we
    # work so that stdout carries exactly one JSON object for the parent to parse.
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        result = measure(_load_spec(argv))
        status = 0
    except BaseException as exc:
        # BaseException too: MemoryError, KeyboardInterrupt, SystemExit must also end as JSON.
        result, status = {"ok": False, "error": _one_line(exc), "oom": _is_oom(exc)}, 1
    sys.stdout.flush()
    with os.fdopen(out_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(result) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Bounds on every number a user gives edgepack (options and recipe fields), documented in
docs/guarantees.md: past them a value is a typo or an attack (100000 threads exhaust memory or
crash onnxruntime's thread pool; a dim of 10^12 allocates terabytes), refused with one line when
the option is parsed or the recipe loads, never after minutes of work.

Constants only, and no import at module level: the CLI's options read them at import time and
`edgepack --help` stays instant. Threads follow the runtime's rule (edgepack_runtime.limits).
"""

from __future__ import annotations

MAX_RUNS = 1_000_000  # timed runs per benchmark config
MAX_WARMUP = 100_000  # untimed runs before them
MAX_SECONDS = 3600.0  # time budget per benchmark config
MAX_BATCH = 65_536  # batch sizes
MAX_DIM = 1 << 20  # a symbolic input dim's value (--dim sequence=N)
MAX_MEMORY_MB = 1 << 20  # a host-emulated memory cap (1 TiB)
MAX_NEW_TOKENS = 1 << 16  # tokens one generation may add (the runtime's cap)
MAX_TOP_K = 1 << 20  # sampling: the k likeliest tokens (past any vocabulary)
MAX_SEED = 2**32 - 1  # seeds (numpy's legacy and torch's common range)
MAX_SAMPLES = 10_000_000  # calibration and evaluation examples
MAX_TRIALS = 10_000  # accuracy-search trials
MAX_LENGTH = 1 << 20  # tokens per text
MAX_PROCESSES = 1024  # torchrun processes
MIN_OPSET, MAX_OPSET = 7, 26  # ONNX opsets an export may ask for


def max_threads() -> int:
    """The most threads any option or field takes on this machine: the runtime's rule,
    edgepack_runtime.limits.MAX_THREADS_PER_CORE (4) per core."""
    from packager.edge_runtime import load_runtime

    return load_runtime().limits.max_threads()


def threads_error(value: int) -> str | None:
    """Why a thread count is out of bounds (None when it is in 1..max_threads())."""
    from packager.edge_runtime import load_runtime

    MAX_THREADS_PER_CORE = load_runtime().limits.MAX_THREADS_PER_CORE

    top = max_threads()
    if 1 <= value <= top:
        return None
    return f"thread counts must be 1 to {top} ({MAX_THREADS_PER_CORE} per core here), got {value}"

"""Describe the host a benchmark ran on, so a number is never separated from its machine."""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata

# ISA features that change which onnxruntime kernels run (and so the latency):
# AVX2/AVX-512/VNNI/AMX on x86 for fp32 and int8 GEMMs, ASIMD/dot-product on Arm for int8.
ISA_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "amx_tile",
    "neon",
    "asimd",
    "asimddp",
)

# Distributions that install the `onnxruntime` module; the version is read from metadata
# so that describing the host does not cost an onnxruntime import (~0.3 s).
_ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
    "onnxruntime-qnn",
)


def _read_cpuinfo() -> tuple[str, set[str]]:
    """The first CPU model string and the union of feature flags in /proc/cpuinfo."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return model, flags
    for line in lines:
        key, _, value = line.partition(":")
        key = key.strip().lower()
        # x86 says "model name"; Arm kernels vary ("Hardware", "Model", none at all).
        if not model and key in ("model name", "hardware", "model", "cpu model"):
            # x86 "model" is a bare family number, not a name.
            if not value.strip().isdigit():
                model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return model, flags


def _total_memory_mb() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / (1024 * 1024)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return None


def _physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except ImportError:
        return None


def _onnxruntime_version() -> str | None:
    for name in _ORT_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def _host_info() -> dict:
    model, flags = _read_cpuinfo()
    if "asimd" in flags:
        # AArch64 kernels report NEON as "asimd"; name it too so one check works on both.
        flags.add("neon")
    return {
        "cpu": model or platform.processor() or platform.machine() or "unknown",
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        # Containers and taskset shrink what this process may use below os.cpu_count().
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_mb": _total_memory_mb(),
        "os": f"{platform.system()} {platform.release()}".strip(),
        "python": platform.python_version(),
        "onnxruntime": _onnxruntime_version(),
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
    }


def host_info() -> dict:
    """CPU, cores, memory, arch, OS, python and onnxruntime versions, ISA flags of interest.

    Read once per process; each call returns a fresh copy so callers may annotate it.
    """
    info = _host_info()
    return {**info, "isa": list(info["isa"])}


def cpu_clock_ghz() -> float | None:
    """The clock /proc/cpuinfo reports for the first CPU ("cpu MHz"), in GHz; None elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() == "cpu mhz":
                    return float(value) / 1000
    except (OSError, ValueError):
        return None
    return None


def cpu_flags() -> list[str]:
    """Every feature flag /proc/cpuinfo lists (x86 `flags`, Arm `Features`), sorted."""
    return sorted(_read_cpuinfo()[1])


def l2_cache_bytes() -> int | None:
    """The first CPU's level-2 cache size from sysfs (Linux), in bytes; None when unknown."""
    import glob

    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(f"{index}/level") as f:
                level = f.read().strip()
            with open(f"{index}/size") as f:
                size = f.read().strip()
        except OSError:
            continue
        if level == "2" and size:
            unit = {"K": 1024, "M": 1024 * 1024}.get(size[-1], 1)
            return int(size.rstrip("KM")) * unit
    return None

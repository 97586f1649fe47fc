"""A per-target latency model: per-op-class costs measured on this host (packager.bench.microbench),
scaled to a target by its published peaks for that class, summed over the kernels onnxruntime
runs for a graph. A point estimate with an error band, never a measurement.

The model, stated so it can be checked by hand:

- Calibration (`fit`): for each op class c the host's per-op time is t = t0_c + work / r_c
  (least squares in relative error over the microbenchmark sizes); `session_us` is one run's
  fixed cost. The host's peak for each class comes from its ISA and clock (`host_peaks`), so
  each class has a kernel efficiency e_c = r_c / peak_c (at most 1).
- A graph is first optimized by onnxruntime (level `extended`: the fusions every CPU gets, e.g.
  Conv+BatchNorm+Relu -> FusedConv, QDQ -> QLinearConv, not x86-only layouts), then each kernel is
  classed (dense / depthwise conv, GEMM, fp32 / int8 / dynamic int8 / int4, else memory-bound) and
  costed with the cost model's work counts (packager.bench.costmodel).
- On a target with published peaks P_c (peak_gflops, peak_int8_gops where it has dot-product
  instructions, else the FP32 peak, as the roofline does; bandwidth_gbs): r_c' = e_c x P_c /
  cores per core; fixed costs scale by the clock ratio (host effective clock / target clock: an
  equal-IPC assumption that flatters narrower cores); memory-bound ops move bytes at the
  published bandwidth. On the host itself nothing is scaled.
- Threads: an op's work is split over min(threads, cores, work / 64 Ki MACs) threads (MLAS
  hands each thread at least MLAS_SGEMM_THREAD_COMPLEXITY = 64 x 1024 multiply-accumulates);
  its fixed cost is not.
- The band: the calibration's worst fit error on the host, times the transfer error of a
  foreign target (TRANSFER_BAND, from the validation table in the README).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1
# The least band an estimate for this host states: the tiny graphs of tests/bench/test_latency.py
# land within it of their own measurements (a fit to a dozen sizes cannot promise better).
HOST_BAND = 1.5
# Worst |log(predicted / published)| over the README's validation pairs, as a factor: estimates
# for a target other than this host carry it on top of the host's own fit error.
TRANSFER_BAND = 2.2
_PAR_WORK = (
    2 * 64 * 1024
)  # FLOPs (2 x MACs) one thread gets at least (MLAS_SGEMM_THREAD_COMPLEXITY)
_PAR_BYTES = 256 * 1024  # bytes per thread for elementwise ops (onnxruntime's cost-based split)
_INT8 = ("gemm_int8", "conv_int8", "dwconv_int8", "gemm_dynamic")


def describe_host() -> dict[str, Any]:
    """This host as the calibration records it: host_info() plus its clock and the ISA flags
    the peak rules read."""
    from packager.bench.machine import cpu_clock_ghz, cpu_flags, host_info, l2_cache_bytes

    wanted = {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd"}
    wanted |= {"asimddp", "neon"}
    info = host_info()
    flags = sorted(set(cpu_flags()) & wanted)
    return {**info, "clock_ghz": cpu_clock_ghz(), "flags": flags, "cache_bytes": l2_cache_bytes()}


# Working sets up to the cache size move at cache speed, larger ones at DRAM speed: the host's
# L2 per core (sysfs), a target's `cache_kb` or 1 MiB (BCM2711's shared L2).
SMALL_BYTES = 1 << 20


def fit(measured: dict[str, Any], host: dict[str, Any]) -> dict[str, Any]:
    """The calibration record from microbench.measure(): the memory class's fixed cost and its
    two bandwidths (cache-sized and DRAM-sized working sets), then per compute class t0_us, rate,
    efficiency against this host's peak and fit error; the host band (worst fit error)."""
    classes, worst = {}, 0.0
    mem = _points(measured["classes"]["memory"])
    t0_m, bw_small, bw_large = _fit_memory(*mem, host.get("cache_bytes") or SMALL_BYTES)
    cache = host.get("cache_bytes") or SMALL_BYTES
    memory = {"t0_us": t0_m, "bw_small": bw_small, "bw_large": bw_large, "cache_bytes": cache}
    for cls, data in measured["classes"].items():
        work, us, nbytes = _points(data)
        if cls == "memory":
            pred = np.array([_memory_us(b, memory, 1) for b in nbytes])
            t0, rate = t0_m, bw_small
        else:
            t0, rate = _fit_compute(work, us, nbytes, memory)
            pred = np.array(
                [
                    t0 + max(w / (rate * 1e3), _bytes_us(b, memory, 1))
                    for w, b in zip(work, nbytes, strict=True)
                ]
            )
        err = float(np.max(np.abs(np.log(pred / us))))
        worst = max(worst, err)
        classes[cls] = {"unit": data["unit"], "t0_us": t0, "rate": rate, "fit_error": err}
    peaks = host_peaks(host, classes)
    for cls, c in classes.items():
        peak = peaks["per_core"].get(_peak_kind(cls))
        c["efficiency"] = min(1.0, c["rate"] / peak) if peak else None
    return {
        "version": VERSION,
        "host": host,
        "session_us": measured["session_us"],
        "memory": memory,
        "classes": classes,
        "peaks": peaks,
        "noise": max(1.0, float(measured.get("noise", 1.0))),
        "worst_fit_error": math.exp(worst),
        "points": {k: v["points"] for k, v in measured["classes"].items()},
    }


def _points(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pts = data["points"]
    return tuple(np.array([p[i] for p in pts], dtype=float) for i in (0, 1, 3))


def _fit_memory(work, us, nbytes, cache: int) -> tuple[float, float, float]:
    """(t0, cache bandwidth, DRAM bandwidth in GB/s) of t = t0 + bytes / bw(bytes)."""
    small, large = nbytes <= cache, nbytes > cache
    a = np.stack([1 / us[small], nbytes[small] / us[small]], axis=1)
    (t0, per_byte), *_ = np.linalg.lstsq(a, np.ones(int(small.sum())), rcond=None)
    t0 = max(0.0, float(t0))
    if per_byte <= 0:
        per_byte = float(np.mean((us[small] - t0) / nbytes[small]))
    bw_small = 1e-3 / max(float(per_byte), 1e-9)
    if large.any():
        bw_large = float(np.median(nbytes[large] / np.maximum(us[large] - t0, 1e-3))) * 1e-3
    else:
        bw_large = bw_small
    return t0, bw_small, min(bw_large, bw_small)


def _bytes_us(nbytes: float, memory: dict[str, Any], par: int) -> float:
    if nbytes <= memory.get("cache_bytes", SMALL_BYTES):
        return nbytes / (memory["bw_small"] * 1e3 * par)
    return nbytes / (memory["bw_large"] * 1e3)


def _memory_us(nbytes: float, memory: dict[str, Any], par: int) -> float:
    return memory["t0_us"] + _bytes_us(nbytes, memory, par)


def _fit_compute(work, us, nbytes, memory) -> tuple[float, float]:
    """(t0 in us, rate in G work/s) of t = t0 + max(work / rate, bytes / bandwidth), minimising
    the squared log error over a grid (the max() has no closed form)."""
    moved = np.array([_bytes_us(b, memory, 1) for b in nbytes])
    top = float(np.max(work / us)) * 1e-3
    best = (float("inf"), 0.0, top)
    for rate in np.geomspace(top * 0.5, top * 20, 80):
        compute = np.maximum(work / (rate * 1e3), moved)
        for t0 in np.linspace(0, float(np.min(us)), 60):
            err = float(np.sum(np.log((t0 + compute) / us) ** 2))
            if err < best[0]:
                best = (err, float(t0), float(rate))
    return best[1], best[2]


def _peak_kind(cls: str) -> str:
    if cls == "memory":
        return "bandwidth"
    return "int8" if cls in _INT8 else "fp32"


def host_peaks(host: dict[str, Any], classes: dict[str, Any] | None = None) -> dict[str, Any]:
    """This host's per-core peaks from its ISA and clock, with the rule used. The clock is the
    larger of /proc/cpuinfo's and the one the fp32 GEMM microbenchmark implies (turbo)."""
    isa = set(host.get("flags") or host.get("isa") or [])
    x86 = host.get("arch") in ("x86_64", "AMD64", "i686")
    if x86:
        fp32 = 64 if "avx512f" in isa else 32 if "avx2" in isa else 16 if "avx" in isa else 8
        # int8 on the vector units: VNNI's dot product does 4 x the FP32 FMA's multiply-adds,
        # AVX2's vpmaddubsw + vpmaddwd pair 2 x. AMX tiles are not counted: they serve only
        # large GEMMs, where the efficiency is capped at 1 instead.
        vnni = bool({"avx512_vnni", "avx_vnni"} & isa)
        int8 = 4 * fp32 if vnni else 2 * fp32
        width = "AVX-512" if fp32 == 64 else "AVX2" if fp32 == 32 else "SSE/AVX"
        rule = (
            f"{fp32} FP32 FLOP/cycle ({width} FMA, two pipes), {int8} int8 ops/cycle "
            f"({'VNNI: 4' if vnni else 'no VNNI: 2'} x FP32)"
        )
    else:  # aarch64 hosts: one 128-bit FMA pipe as on Cortex-A72, dot product 4 x that
        fp32 = 8
        int8 = 32 if "asimddp" in isa else 16
        rule = f"{fp32} FP32 FLOP/cycle (one 128-bit NEON FMA pipe), {int8} int8 ops/cycle"
    clock = float(host.get("clock_ghz") or 0) or 2.0
    measured_fp32 = (classes or {}).get("gemm_fp32", {}).get("rate")
    if measured_fp32 and measured_fp32 / fp32 > clock:
        clock = measured_fp32 / fp32  # the core runs faster than its nominal clock
    return {
        "clock_ghz": clock,
        "per_core": {"fp32": fp32 * clock, "int8": int8 * clock},
        "rule": rule,
    }


def graph_ops(
    model_path: str | Path, *, batch: int, dims, shapes, quantized: Mapping[str, Any] | None = None
) -> tuple[list, Any]:
    """(kernels after onnxruntime's `extended` optimizations as (op_type, class, work, ...),
    the graph cost of the optimized graph). `quantized`: the op types quantization schemes
    write -> their class (packager.quantize.registry.op_classes)."""
    import onnx
    import onnxruntime as ort

    from packager.bench.costmodel import analyze

    with tempfile.TemporaryDirectory(prefix="edgepack-latency-") as tmp:
        out = str(Path(tmp) / "optimized.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = out
        so.log_severity_level = 3
        ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
        cost = analyze(out, batch=batch, dims=dims, shapes=shapes)
        graph = onnx.load(out, load_external_data=False).graph
    weights = {i.name: list(i.dims) for i in graph.initializer}
    kernels = []
    for node, op in zip(graph.node, cost.ops, strict=True):
        if node.op_type == "Constant":
            continue
        cls = op_class(node, weights, quantized or {})
        kernels.append(
            {"op": node.op_type, "class": cls, "work": op.flops, "bytes": op.bytes_moved}
        )
    return kernels, cost


_CONV = {"Conv", "FusedConv", "NhwcFusedConv"}
_GEMM = {"MatMul", "Gemm", "FusedMatMul", "FusedGemm", "GemmFastGelu"}
_WEIGHT_AT = {"QLinearConv": 3, "NhwcQLinearConv": 3}  # the weight input of a conv op (else 1)


def op_class(node, weights: dict[str, list[int]], quantized: Mapping[str, Any]) -> str:
    """The microbenchmark class whose costs a kernel is priced at. Float convolutions and
    GEMMs are known here; a quantized op's class is its scheme's (`quantized`: op type -> class
    or node -> class), a convolution's made depthwise (dw) by its weight's shape."""
    op = node.op_type
    if op in _CONV or op in _GEMM or op in ("Attention", "MultiHeadAttention"):
        cls = "conv_fp32" if op in _CONV else "gemm_fp32"
    elif op in quantized:
        found = quantized[op]
        cls = found(node) if callable(found) else found
    else:
        return "memory"
    if cls.startswith("conv_"):
        w = weights.get(node.input[_WEIGHT_AT.get(op, 1)], [])
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if group > 1 and len(w) > 1 and w[1] == 1:
            return f"dw{cls}"
    return cls


def target_rates(calibration: dict[str, Any], profile) -> dict[str, Any]:
    """Per class (t0 in us, rate per core in G work/s) and the memory system on `profile`
    (None or a host profile: this host as measured), and the scale factors used."""
    classes, memory = calibration["classes"], calibration["memory"]
    if profile is None or getattr(profile, "host", False):
        return {
            "classes": {k: (c["t0_us"], c["rate"]) for k, c in classes.items()},
            "memory": dict(memory),
            "overhead_scale": 1.0,
            "session_us": calibration["session_us"],
            "cores": calibration["host"].get("usable_cores") or 1,
            "transfer": 1.0,
        }
    host = calibration["peaks"]
    cores = profile.cores or 1
    scale = host["clock_ghz"] / (profile.clock_ghz or host["clock_ghz"])
    fp32 = profile.peak_gflops.value / cores
    int8 = profile.peak_int8_gops.value if profile.peak_int8_gops else profile.peak_gflops.value
    peaks = {"fp32": fp32, "int8": int8 / cores}
    out = {}
    for k, c in classes.items():
        kind = _peak_kind(k)
        rate = peaks.get(kind, 0.0) * (c["efficiency"] or 1.0) if kind in peaks else c["rate"]
        out[k] = (c["t0_us"] * scale, rate)
    return {
        "classes": out,
        # Cache-resident data moves as fast as the core loads and stores: scaled like its FP32
        # throughput (SIMD width x clock); larger working sets at the published DRAM bandwidth.
        "memory": {
            "t0_us": memory["t0_us"] * scale,
            "bw_small": memory["bw_small"] * fp32 / host["per_core"]["fp32"],
            "bw_large": profile.bandwidth_gbs.value,
            "cache_bytes": SMALL_BYTES,
        },
        "overhead_scale": scale,
        "session_us": calibration["session_us"] * scale,
        "cores": cores,
        "transfer": TRANSFER_BAND,
    }


def prediction_band(
    calibration: dict[str, Any], per_class: dict[str, float], total_us: float, transfer: float
) -> float:
    """The multiplicative band of one prediction: the fit error of each class the time is
    spent in (weighted by that time), times the host's timing noise, times the transfer error
    of a foreign target."""
    err = sum(us * calibration["classes"][cls]["fit_error"] for cls, us in per_class.items()) / max(
        total_us, 1e-9
    )
    return max(HOST_BAND, math.exp(err) * calibration["noise"]) * transfer


def kernel_us(k: dict[str, Any], rates: dict[str, Any], threads: int) -> float:
    """One kernel's time: its class's fixed cost plus the slower of its work at the class's rate
    and its bytes at the memory system's speed, each split over the threads it gets."""
    memory = rates["memory"]
    par_bytes = max(1, min(threads, rates["cores"], int(k["bytes"] // _PAR_BYTES)))
    if k["class"] == "memory":
        return memory["t0_us"] + _bytes_us(k["bytes"], memory, par_bytes)
    t0, rate = rates["classes"][k["class"]]
    par = max(1, min(threads, rates["cores"], int(k["work"] // _PAR_WORK)))
    return t0 + max(k["work"] / (rate * 1e3 * par), _bytes_us(k["bytes"], memory, par))


def predict(
    model_path: str | Path,
    calibration: dict[str, Any],
    profile=None,
    *,
    threads: int = 1,
    batch: int = 1,
    dims=None,
    shapes=None,
    quantized: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The latency model's estimate of one run of `model_path` on `profile` (None: this host)
    at `threads`: point, band, per-class milliseconds, the graph's size and memory.
    `quantized`: the op classes of the quantization schemes' ops (graph_ops)."""
    kernels, cost = graph_ops(
        model_path, batch=batch, dims=dims or {}, shapes=shapes or {}, quantized=quantized
    )
    rates = target_rates(calibration, profile)
    per_class: dict[str, float] = {}
    total = rates["session_us"]
    for k in kernels:
        us = kernel_us(k, rates, threads)
        per_class[k["class"]] = per_class.get(k["class"], 0.0) + us
        total += us
    band = prediction_band(calibration, per_class, total, rates["transfer"])
    ms = total / 1e3
    return {
        "method": "latency-model",
        "latency_ms": ms,
        "low_ms": ms / band,
        "high_ms": ms * band,
        "band": band,
        "kernels": len(kernels),
        "classes_ms": {k: v / 1e3 for k, v in sorted(per_class.items())},
        "session_ms": rates["session_us"] / 1e3,
        "overhead_scale": rates["overhead_scale"],
        "threads": threads,
        "param_bytes": cost.param_bytes,
        "activation_peak_bytes": cost.activation_peak_bytes,
        "macs": cost.macs,
        "unknown_ops": cost.unknown_ops,
    }

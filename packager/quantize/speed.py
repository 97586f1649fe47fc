"""Speed check: fp32 and quantized side by side on this host, and why INT8 may not be faster.

"INT8 is no faster than FP32 on my CPU" has a handful of usual causes; each is checked on the
model and the CPU rather than guessed: the CPU probe (VNNI / AMX on x86, dot-product on Arm),
QuantizeLinear/DequantizeLinear nodes that survive onnxruntime's fusions (fake quantization:
float math plus conversions), ConvInteger from dynamic quantization of convolutions, fp16 on a
CPU provider that mostly casts back to fp32, and models so small that per-op overhead rules.
"""

from __future__ import annotations

import statistics
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from packager.config import QuantizeConfig
from packager.errors import RecipeError
from packager.quantize.registry import scheme_of


def cpu_features(isa: list[str] | None = None) -> dict[str, Any]:
    """The CPU features that decide which int8 kernels run, from the bench host probe."""
    from packager.bench import host_info

    info = host_info()
    flags = set(info["isa"] if isa is None else isa)
    out = {
        "arch": info["arch"],
        "isa": sorted(flags),
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
        "amx": bool(flags & {"amx_tile", "amx_int8"}),
        "neon": bool(flags & {"neon", "asimd"}),
        "dotprod": "asimddp" in flags,
    }
    out["int8_dot_product"] = out["vnni"] or out["amx"] or out["dotprod"]
    return out


def ops_after_ort(model: Path) -> Counter[str]:
    """Op counts of the graph onnxruntime actually runs (after its default optimizations)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgepack-opt-") as tmp:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(opts.optimized_model_filepath, load_external_data=False).graph
        return Counter(n.op_type for n in graph.node)


def slow_causes(
    cfg: QuantizeConfig, ran_ops: Counter[str], cpu: dict[str, Any], fp32_p50: float
) -> list[str]:
    """Likely reasons a quantized model is not faster than fp32, most specific first: its
    scheme's own (packager.quantize.schemes), then the CPU's and the model's size."""
    scheme = scheme_of(cfg)
    causes = list(scheme.causes(cfg, ran_ops, cpu))
    if scheme.int8_weights and not cpu["int8_dot_product"]:
        have = "Arm without dot-product" if cpu["neon"] else "x86 without AVX512-VNNI/AVX-VNNI/AMX"
        causes.append(
            f"no VNNI: this CPU ({have}) has no int8 dot-product instructions, so int8 GEMMs gain "
            "little over fp32 (they still shrink the model 4x)"
        )
    if fp32_p50 < 0.2:
        causes.append(
            f"the model is tiny (fp32 p50 {fp32_p50:.3f} ms): per-op overhead dominates and "
            "quantization adds nodes"
        )
    return causes


def one_sample(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v[:1]) for k, v in feeds.items()}


def example_feeds(cfg: QuantizeConfig, model: Path, batches, calib) -> dict[str, Any]:
    """One example to time the models on and to check an opset upgrade with: from the
    evaluation data, the calibration data or the feeds file (their real shapes), else generated
    like `edgepack bench` does (quantize.dims, guessed dims named, dishonest integers refused)."""
    from packager.bench.errors import BenchError
    from packager.bench.feeds import generated_feeds, load_feeds

    first = batches[0][0] if batches else None
    source = "evaluation data" if first is not None else None
    if first is None and calib is not None:
        first, source = next(iter(calib.batches()), (None, None))[0], "calibration data"
    if first is None and cfg.feeds:
        try:
            first, source = load_feeds(cfg.feeds), f"feeds {cfg.feeds}"
        except BenchError as err:
            raise RecipeError(f"quantize.feeds: {err}") from None
    if first is not None:
        return {"feeds": one_sample(first), "source": source, "guessed": {}, "why": None}
    step = decode_step_feeds(model)
    if step is not None:
        return {
            "feeds": step,
            "source": "one decode step after 64 cached tokens",
            "guessed": {},
            "why": None,
        }
    try:
        feeds, guessed = generated_feeds(model, batch=1, dims=cfg.dims)
    except BenchError as err:
        return {"feeds": None, "source": None, "guessed": {}, "why": str(err)}
    return {"feeds": feeds, "source": "generated", "guessed": guessed, "why": None}


def decode_step_feeds(model: Path, past: int = 64) -> dict[str, np.ndarray] | None:
    """The feeds of one decode step of a decoder with a KV cache (past_key_values.* inputs):
    one new token after `past` cached positions, what tokens/s of generation is made of;
    None for any other model."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    names = {i.name: i for i in graph.input}
    pasts = [n for n in names if n.startswith("past_key_values.")]
    if not pasts or "input_ids" not in names:
        return None
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {"input_ids": np.array([[1]], np.int64)}
    if "attention_mask" in names:
        feeds["attention_mask"] = np.ones((1, past + 1), np.int64)
    if "position_ids" in names:
        feeds["position_ids"] = np.array([[past]], np.int64)
    for n in pasts:
        dims = [d.dim_value for d in names[n].type.tensor_type.shape.dim]
        feeds[n] = rng.standard_normal((1, dims[1], past, dims[3])).astype(np.float32)
    return feeds


def node_macs(model: Path, feeds: dict[str, np.ndarray] | None) -> tuple[dict[str, int], int]:
    """Each node's multiply-accumulates at batch 1 (input shapes from `feeds`), and the total:
    what max_float_macs counts (packager.bench.costmodel's conventions)."""
    from packager.bench.costmodel import analyze

    shapes = {k: [1, *np.shape(v)[1:]] for k, v in (feeds or {}).items()}
    cost = analyze(model, batch=1, shapes=shapes)
    return {op.name: op.macs for op in cost.ops}, cost.macs


def latency(model: Path, threads: int, runs: int, feeds: dict[str, np.ndarray] | None) -> float:
    """p50 ms of `model` at batch 1 in a child process (the bench runner)."""
    from packager.bench import run_one

    r = run_one(model, threads=threads, batch=1, warmup=5, runs=runs, inputs=feeds, timeout=300)
    return float(r["latency_ms"]["p50"])


def _p50s(fp32: Path, quantized: Path, threads: int, runs: int, feeds) -> tuple[float, float]:
    """Both p50s; a verdict of "not faster" is measured twice more, the two models alternating,
    and the medians of the three rounds stand (a load spike on a shared machine during one
    model's runs once read as a 4.5x slow-down and would have failed the command)."""
    rounds = [(latency(fp32, threads, runs, feeds), latency(quantized, threads, runs, feeds))]
    if rounds[0][1] >= rounds[0][0]:
        rounds += [(latency(fp32, threads, runs, feeds), latency(quantized, threads, runs, feeds))
                   for _ in range(2)]  # fmt: skip
    return statistics.median(f for f, _ in rounds), statistics.median(q for _, q in rounds)


def speed_check(
    fp32: Path,
    quantized: Path,
    cfg: QuantizeConfig,
    threads: int,
    runs: int,
    feeds: dict[str, np.ndarray] | None,
) -> dict[str, Any]:
    """Benchmark both back to back with the same threads and feeds (never reusing an earlier
    timing: load on a shared machine drifts); `warning` is set when quantized is not faster."""
    fp32_p50, q_p50 = _p50s(fp32, quantized, threads, runs, feeds)
    cpu = cpu_features()
    out: dict[str, Any] = {
        "threads": threads,
        "batch": 1,
        "fp32_p50_ms": fp32_p50,
        "p50_ms": q_p50,
        "speedup": fp32_p50 / q_p50 if q_p50 > 0 else None,
        "cpu": cpu,
        "causes": [],
        "warning": None,
        "faster_mode": None,
    }
    if q_p50 >= fp32_p50 and cfg.mode != "none":
        ran = ops_after_ort(quantized)
        causes = slow_causes(cfg, ran, cpu, fp32_p50)
        out["causes"], out["faster_mode"] = causes, scheme_of(cfg).instead(cfg, ran)
        out["warning"] = (
            f"{cfg.mode} model is not faster than fp32 on this host at {threads} thread(s): p50 "
            f"{q_p50:.3f} ms vs {fp32_p50:.3f} ms. Likely: " + "; ".join(causes or ["unknown"])
        )
    return out


def checked_speed(
    cfg: QuantizeConfig, original: Path, out: Path, feeds: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[str]]:
    """A quantize step's side-by-side timing (None when off or impossible) and the warnings to
    show. A failure (a model that cannot run on the inputs it was given) is a warning, never
    the loss of a finished quantization. `feeds` is example_feeds' answer."""
    from packager.bench.errors import BenchError

    if not cfg.speed_check:
        return None, []
    if feeds["feeds"] is None:
        return None, [f"speed check skipped: {feeds['why']}"]
    guessed = ", ".join(f"{k}={v}" for k, v in feeds["guessed"].items())
    args = (cfg, cfg.speed_threads, cfg.speed_runs, feeds["feeds"])
    try:
        speed = speed_check(original, out, *args)
    except BenchError as err:
        hint = (
            f"; its inputs were generated with symbolic dims guessed ({guessed}): give "
            "quantize.dims (--dim NAME=VALUE), feeds (--feeds) or eval/calib data"
            if guessed
            else ""
        )
        return None, [f"speed check failed, the quantized model is kept: {err}{hint}"]
    shapes = {k: list(v.shape) for k, v in feeds["feeds"].items()}
    speed |= {"inputs": shapes, "input_source": feeds["source"], "guessed_dims": feeds["guessed"]}
    warnings = []
    if guessed:
        warnings.append(
            f"speed check on generated inputs {shapes} with guessed dims {guessed}: give "
            "quantize.dims (--dim NAME=VALUE), feeds (--feeds) or eval/calib data for real shapes"
        )
    if speed["warning"]:
        warnings.append(speed["warning"])
    return speed, warnings

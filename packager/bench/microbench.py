"""Host microbenchmarks for the latency model (packager.bench.latency): per op class, a few small
ONNX graphs of that op at growing sizes, timed in onnxruntime with one intra-op thread.

Each graph is a chain of `n` identical ops, so one run costs the session's fixed cost plus n op
times; the per-op time at each size is fitted, per class, as

    t(work) = t0 + work / rate          (Hockney's model: a fixed cost, then an asymptotic rate)

where work is multiply-accumulates x 2 (FLOPs, int ops) for compute classes and bytes moved for
the memory class. The classes are the kernels onnxruntime's CPU provider runs after its graph
optimizations: fp32 GEMM and convolution (dense and depthwise), int8 GEMM and convolution as
edgepack's static QDQ quantization writes them (onnxruntime fuses them into QLinearMatMul /
QLinearConv), dynamic int8 MatMul (DynamicQuantizeMatMul), int4 weight-only MatMul
(MatMulNBits), and memory-bound elementwise ops (an Add over growing tensors).

Timing: a warm-up, then blocks of runs of ~`block_ms` each; the per-run time is the fastest
block's mean (the least disturbed by other work on the machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

# class -> (unit of its rate, sizes). Sizes are (rows, width) for GEMMs, (channels, side) for
# convolutions, elements for the memory class.
CLASSES: dict[str, tuple[str, tuple[tuple[int, ...], ...]]] = {
    "gemm_fp32": ("GFLOP/s", ((1, 64), (1, 256), (16, 256), (64, 512), (256, 512))),
    "conv_fp32": ("GFLOP/s", ((8, 8), (16, 16), (32, 16), (32, 32), (64, 28))),
    "dwconv_fp32": ("GFLOP/s", ((16, 16), (64, 28), (128, 56), (256, 28))),
    "gemm_int8": ("GOP/s", ((1, 64), (1, 256), (16, 256), (64, 512), (256, 512))),
    "conv_int8": ("GOP/s", ((8, 8), (16, 16), (32, 16), (32, 32), (64, 28))),
    "dwconv_int8": ("GOP/s", ((16, 16), (64, 28), (128, 56), (256, 28))),
    "gemm_dynamic": ("GOP/s", ((1, 64), (1, 256), (16, 256), (64, 512), (256, 512))),
    "gemm_int4": ("GOP/s", ((1, 64), (1, 256), (16, 256), (64, 512), (256, 512))),
    "memory": ("GB/s", ((256,), (4096,), (65536,), (1 << 20,), (1 << 22,))),
}
CHAIN = 4  # ops per graph: enough to amortise the session's own cost
_MS = "com.microsoft"


def _f32(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32) * 0.1


def _model(nodes, inputs, outputs, inits, ms: bool = False):
    from onnx import helper

    graph = helper.make_graph(nodes, "microbench", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(_MS, 1)] if ms else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _io(name: str, shape):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _qdq_chain(weights, op: str, attrs: dict[str, Any], rng):
    """x -> Q -> [DQ -> op(DQ(w_int8)) -> Q] x n -> DQ: edgepack's static QDQ (u8 activations,
    s8 7-bit weights), which onnxruntime fuses into its integer kernels."""
    from onnx import helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(128, np.uint8), "z"),
        numpy_helper.from_array(np.array(0.01, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
    ]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q0"])]
    for i, w in enumerate(weights):
        wq = rng.integers(-63, 64, size=w, dtype=np.int8)
        inits.append(numpy_helper.from_array(wq, f"w{i}"))
        nodes += [
            helper.make_node("DequantizeLinear", [f"q{i}", "s", "z"], [f"d{i}"]),
            helper.make_node("DequantizeLinear", [f"w{i}", "ws", "wz"], [f"wd{i}"]),
            helper.make_node(op, [f"d{i}", f"wd{i}"], [f"o{i}"], **attrs),
            helper.make_node("QuantizeLinear", [f"o{i}", "s", "z"], [f"q{i + 1}"]),
        ]
    n = len(weights)
    nodes.append(helper.make_node("DequantizeLinear", [f"q{n}", "s", "z"], ["y"]))
    return nodes, inits


def op_bytes(cls: str, size: tuple[int, ...]) -> float:
    """Bytes one op of a calibration point reads and writes: activations in and out, weights."""
    item = 1.0 if cls in ("gemm_int8", "conv_int8", "dwconv_int8") else 4.0
    if cls == "memory":
        return 3.0 * 4 * size[0]
    if cls.startswith("gemm"):
        m, k = size
        weight = {"gemm_dynamic": 1.0, "gemm_int4": 0.5}.get(cls, item) * k * k
        return 2 * m * k * item + weight
    c, side = size
    per = 1 if cls.startswith("dw") else c
    return 2 * c * side * side * item + c * per * 9 * item


def _chain_graph(cls: str, size: tuple[int, ...], rng) -> tuple[Any, dict[str, np.ndarray], float]:
    """(model, feeds, work of one op) for one calibration point."""
    from onnx import helper, numpy_helper

    ms = False
    if cls.startswith(("gemm", "memory")):
        m, k = size if cls != "memory" else (1, size[0])
        x_shape = [m, k]
        work = 2.0 * m * k * k
        if cls == "memory":
            x_shape, work = [size[0]], 3.0 * 4 * size[0]  # two reads, one write of float32
    else:
        c, side = size
        x_shape = [1, c, side, side]
        per = 1 if cls.startswith("dw") else c
        work = 2.0 * c * per * 9 * side * side
    feeds = {"x": _f32(rng, *x_shape)}
    inits, nodes = [], []
    if cls in ("gemm_fp32", "conv_fp32", "dwconv_fp32", "memory"):
        op = {"gemm_fp32": "MatMul", "memory": "Add"}.get(cls, "Conv")
        attrs = {"pads": [1, 1, 1, 1]} if op == "Conv" else {}
        if cls == "dwconv_fp32":
            attrs["group"] = size[0]
        cur = "x"
        for i in range(CHAIN):
            w = _weight_shape(cls, size)
            inits.append(numpy_helper.from_array(_f32(rng, *w), f"w{i}"))
            out = "y" if i == CHAIN - 1 else f"t{i}"
            nodes.append(helper.make_node(op, [cur, f"w{i}"], [out], **attrs))
            cur = out
    elif cls in ("gemm_int8", "conv_int8", "dwconv_int8"):
        op = "MatMul" if cls == "gemm_int8" else "Conv"
        attrs = {"pads": [1, 1, 1, 1]} if op == "Conv" else {}
        if cls == "dwconv_int8":
            attrs["group"] = size[0]
        weights = [_weight_shape(cls, size)] * CHAIN
        nodes, inits = _qdq_chain(weights, op, attrs, rng)
    else:
        ms = True
        nodes, inits = _contrib_chain(cls, size[1], rng)
    model = _model(nodes, [_io("x", x_shape)], [_io("y", x_shape)], inits, ms)
    return model, feeds, work


def _weight_shape(cls: str, size: tuple[int, ...]) -> list[int]:
    if cls.startswith("gemm"):
        return [size[1], size[1]]
    if cls == "memory":
        return [size[0]]
    c = size[0]
    return [c, 1, 3, 3] if cls.startswith("dw") else [c, c, 3, 3]


def _contrib_chain(cls: str, k: int, rng):
    """DynamicQuantizeMatMul (dynamic int8) or MatMulNBits (int4, block 32, accuracy level 0:
    what edgepack's int4 mode writes by default) chains of k x k weights."""
    from onnx import helper, numpy_helper

    nodes, inits, cur = [], [], "x"
    for i in range(CHAIN):
        out = "y" if i == CHAIN - 1 else f"t{i}"
        if cls == "gemm_dynamic":
            w = rng.integers(-63, 64, size=(k, k), dtype=np.int8)
            inits += [
                numpy_helper.from_array(w, f"w{i}"),
                numpy_helper.from_array(np.array([0.01], np.float32), f"s{i}"),
                numpy_helper.from_array(np.array([0], np.int8), f"z{i}"),
            ]
            ins = [cur, f"w{i}", f"s{i}", f"z{i}"]
            nodes.append(helper.make_node("DynamicQuantizeMatMul", ins, [out], domain=_MS))
        else:
            block = 32
            blocks = k // block
            packed = rng.integers(0, 256, size=(k, blocks, block // 2), dtype=np.uint8)
            scales = np.full(k * blocks, 0.01, np.float32)
            inits += [
                numpy_helper.from_array(packed, f"w{i}"),
                numpy_helper.from_array(scales, f"s{i}"),
            ]
            nodes.append(
                helper.make_node(
                    "MatMulNBits",
                    [cur, f"w{i}", f"s{i}"],
                    [out],
                    domain=_MS,
                    K=k,
                    N=k,
                    bits=4,
                    block_size=block,
                    accuracy_level=0,
                )
            )
        cur = out
    return nodes, inits


def _session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def time_run(
    run: Callable[[], Any], *, block_ms: float = 8.0, blocks: int = 5, spread: list | None = None
) -> float:
    """Microseconds per call of `run`: the fastest block's mean, after a warm-up. `spread`, when
    given, gets the median block's mean over the fastest one (how disturbed the timing was)."""
    t0 = time.perf_counter()
    for _ in range(3):
        run()
    once = max((time.perf_counter() - t0) / 3, 1e-7)
    per_block = max(2, min(20000, int(block_ms / 1e3 / once)))
    means = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(per_block):
            run()
        means.append((time.perf_counter() - t) / per_block)
    if spread is not None:
        spread.append(float(np.median(means)) / min(means))
    return min(means) * 1e6


def session_cost(rng, *, block_ms: float, blocks: int) -> float:
    """Microseconds of one run of a one-op graph on a one-element tensor: the session's own
    fixed cost (feeds, outputs, the executor) plus one trivial op."""
    from onnx import helper

    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_io("x", [1])], [_io("y", [1])], [])
    sess = _session(model)
    feeds = {"x": _f32(rng, 1)}
    return time_run(lambda: sess.run(None, feeds), block_ms=block_ms, blocks=blocks)


def measure(
    classes: tuple[str, ...] | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every calibration point: {"session_us", "classes": {cls: {"unit", "points": [[work,
    per-op us, size, bytes], ...]}}}. `quick` times fewer, shorter blocks (tests)."""
    rng = np.random.default_rng(seed)
    block_ms, blocks = (3.0, 3) if quick else (8.0, 5)
    session_us = session_cost(rng, block_ms=block_ms, blocks=blocks)
    out: dict[str, Any] = {"session_us": session_us, "chain": CHAIN, "classes": {}}
    spread: list[float] = []
    for cls in classes or tuple(CLASSES):
        unit, sizes = CLASSES[cls]
        points = []
        for size in sizes[1::2] if quick else sizes:
            model, feeds, work = _chain_graph(cls, size, rng)
            sess = _session(model)
            us = time_run(
                lambda s=sess, f=feeds: s.run(None, f),
                block_ms=block_ms,
                blocks=blocks,
                spread=spread,
            )
            per_op = max((us - session_us) / CHAIN, 1e-3)
            points.append([work, per_op, list(size), op_bytes(cls, size)])
        out["classes"][cls] = {"unit": unit, "points": points}
        if progress is not None:
            progress(cls)
    out["noise"] = float(np.median(spread)) if spread else 1.0
    return out

"""A cost model over an ONNX graph: MACs and FLOPs per op, parameter bytes, peak activation
memory from tensor lifetimes, and a roofline time against a target's peak compute and bandwidth.

Conventions (stated so the numbers can be checked by hand):
- MACs: Conv = N x M x out_spatial x (C/group) x kernel; ConvTranspose = N x C x in_spatial x
  (M/group) x kernel; MatMul = out_elements x K; Gemm = M x N x K. Quantized and fused forms
  count the same MACs as their float twins: QLinearConv, ConvInteger, FusedConv;
  QLinearMatMul, MatMulInteger, FusedMatMul, DynamicQuantizeMatMul, MatMulIntegerToFloat;
  QGemm, FusedGemm; MatMulNBits (int4 weights) = out_elements x its K attribute. Attention
  ops (MultiHeadAttention, ...) are counted as unknown, not as 0.
- FLOPs = 2 x MACs + one FLOP per output element for other arithmetic (Gemm's bias, Add,
  Relu, Q/DQ, ...), pooling's window per output, a reduction's input size, and a few
  per-element constants for transcendental ops (_PER_ELEMENT). Pure data movement
  (Reshape, Transpose, Gather, ...) costs no FLOPs but does move bytes.
- Activation memory: every non-initializer tensor is live from the step that produces it
  (graph inputs: from the start) to its last consumer (graph outputs: to the end), in the
  graph's stored topological order; the peak is the largest sum of live tensor bytes over
  the steps. Runtimes that reuse or fuse buffers can do better, never worse in this model.
- Int8 ops: the integer kernels (QLinearConv, ConvInteger, MatMulInteger, QGemm, ...) and, in
  QDQ graphs, a Conv/MatMul/Gemm whose data and weight both come out of DequantizeLinear
  (onnxruntime fuses those into its integer kernels). Their FLOPs are integer ops.
- Roofline: each op takes max(FLOPs / peak compute, bytes moved / bandwidth); peak compute
  scales with min(threads, cores) / cores, and int8 ops use the target's int8 peak when it
  has one (dot-product instructions: Arm asimddp, x86 VNNI), else its FP32 peak. It is a lower
  bound: no per-op overhead, caches or kernel inefficiency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from packager.bench.shapes import infer as infer_shapes

_MOVE_ONLY = {
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Shape", "Size", "Constant",
    "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Cast",
    "Expand", "Pad", "Tile", "ConstantOfShape", "Dropout", "DepthToSpace", "SpaceToDepth",
}  # fmt: skip
_PER_ELEMENT = {"Softmax": 5, "LogSoftmax": 5, "LayerNormalization": 8, "Gelu": 8, "Erf": 8,
                "Tanh": 4, "Sigmoid": 4, "Exp": 4, "Log": 4, "Sqrt": 2, "HardSwish": 3,
                "BatchNormalization": 2, "InstanceNormalization": 8}  # fmt: skip
_REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
           "GlobalAveragePool", "GlobalMaxPool", "ArgMax", "ArgMin"}  # fmt: skip
_POOL = {"MaxPool", "AveragePool", "LpPool"}
# Where the weight sits for each MAC op (input index).
_CONV_W = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "FusedConv": 1}
_MATMUL_AB = {
    "MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "FusedMatMul": (0, 1),
    "DynamicQuantizeMatMul": (0, 1), "MatMulIntegerToFloat": (0, 1), "GemmFastGelu": (0, 1),
}  # fmt: skip
_GEMM_A = {"Gemm": 0, "FusedGemm": 0, "QGemm": 0}
_INTEGER_OPS = {
    "QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat", "QGemm",
}  # fmt: skip
_QDQ_FUSABLE = {"Conv", "MatMul", "Gemm"}  # onnxruntime's QDQ fusions into integer kernels
# onnxruntime contrib ops with MACs this model does not count: unknown, never a silent 0.
_UNCOUNTED = {
    "Attention", "MultiHeadAttention", "GroupQueryAttention", "QAttention", "PackedAttention",
    "PackedMultiHeadAttention", "DecoderMaskedMultiHeadAttention", "SparseAttention",
    "LongformerAttention", "MoE", "QMoE",
}  # fmt: skip


@dataclass
class OpCost:
    name: str
    op_type: str
    output_shape: list[int] | None
    macs: int
    flops: int
    param_bytes: int
    bytes_moved: int
    known: bool  # False when a shape needed for the count could not be inferred
    int8: bool = False  # an integer kernel (or a QDQ pattern onnxruntime fuses into one)


@dataclass
class GraphCost:
    ops: list[OpCost]
    macs: int
    flops: int
    params: int
    param_bytes: int
    activation_peak_bytes: int
    bytes_moved: int
    unknown_ops: int
    inputs: dict[str, list[int]]
    guessed_dims: dict[str, int]
    int8_macs: int = 0

    def to_json(self, *, with_ops: bool = True) -> dict[str, Any]:
        out = asdict(self)
        if not with_ops:
            out.pop("ops")
        return out


def _bind_inputs(
    model, batch: int, dims: Mapping[str, int], shapes: Mapping[str, list[int]]
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Fix symbolic input dims in place the way the benchmark child does (the shapes of real
    feeds first, when given); return the shapes and the dims that had to be guessed."""
    from packager.bench.child import bind_shape

    inits = {i.name for i in model.graph.initializer}
    bound, guessed = {}, {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims_of = vi.type.tensor_type.shape.dim
        raw = [
            d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else d.dim_param
            for d in dims_of
        ]
        given = shapes.get(vi.name)
        shape = list(given) if given is not None else bind_shape(vi.name, raw, batch, dims, guessed)
        for d, value in zip(dims_of, shape, strict=False):
            d.Clear()
            d.dim_value = int(value)
        bound[vi.name] = [int(v) for v in shape]
    return bound, guessed


def _numel(shape: list[int] | None) -> int | None:
    return None if shape is None else int(np.prod(shape, dtype=np.int64))


def _attr(node, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _macs(node, shape_of) -> int | None:
    op = node.op_type
    out = shape_of(node.output[0]) if node.output else None
    if op in _CONV_W:
        w = shape_of(node.input[_CONV_W[op]])
        if out is None or w is None:
            return None
        return _numel(out) * int(np.prod(w[1:], dtype=np.int64))  # (C/group) x kernel
    if op == "ConvTranspose":
        x, w = shape_of(node.input[0]), shape_of(node.input[1])
        if x is None or w is None:
            return None
        return _numel(x) * int(np.prod(w[1:], dtype=np.int64))  # each input feeds (M/g) x kernel
    if op in _MATMUL_AB:
        a = shape_of(node.input[_MATMUL_AB[op][0]])
        if out is None or a is None:
            return None
        transposed = op == "FusedMatMul" and _attr(node, "transA", 0) and len(a) >= 2
        return _numel(out) * (a[-2] if transposed else a[-1])
    if op == "MatMulNBits":
        return None if out is None else _numel(out) * int(_attr(node, "K", 0))
    if op in _GEMM_A:
        a = shape_of(node.input[_GEMM_A[op]])
        if out is None or a is None:
            return None
        k = a[0] if _attr(node, "transA", 0) else a[-1]
        return _numel(out) * k
    if op in _UNCOUNTED:
        return None
    return 0


def _is_int8(node, producer: dict[str, str]) -> bool:
    if node.op_type in _INTEGER_OPS:
        return True
    if node.op_type not in _QDQ_FUSABLE or len(node.input) < 2:
        return False
    return all(producer.get(name) == "DequantizeLinear" for name in node.input[:2])


def _other_flops(node, shape_of) -> int | None:
    op = node.op_type
    out = _numel(shape_of(node.output[0])) if node.output else 0
    if op in _MOVE_ONLY:
        return 0
    if out is None:
        return None
    if op in _CONV_W or op in _MATMUL_AB or op in ("ConvTranspose", "MatMulNBits"):
        return 0  # bias and requantization are small next to the MACs; not counted
    if op in ("Gemm", "FusedGemm"):
        return out if len(node.input) > 2 and node.input[2] else 0
    if op == "QGemm":
        return out if len(node.input) > 6 and node.input[6] else 0
    if op in _POOL:
        return out * int(np.prod(_attr(node, "kernel_shape", [1]), dtype=np.int64))
    if op in _REDUCE:
        return _numel(shape_of(node.input[0]))
    return out * _PER_ELEMENT.get(op, 1)


def analyze(
    model_path: str | Path,
    *,
    batch: int = 1,
    dims: Mapping[str, int] | None = None,
    shapes: Mapping[str, list[int]] | None = None,
) -> GraphCost:
    """Per-op and total cost of the model with symbolic input dims bound like the benchmark:
    `shapes` (the real feeds' shapes) first, then `dims` by name, the leading dim to `batch`,
    any other dim guessed as 1 (and named in `guessed_dims`)."""
    import onnx

    model = onnx.load(str(model_path))
    inputs, guessed = _bind_inputs(model, batch, dims or {}, shapes or {})
    model, table = infer_shapes(model)
    inits = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            inits.update(node.output)

    def shape_of(name: str) -> list[int] | None:
        return table.get(name, (None, 0))[0] if name else None

    def nbytes(name: str) -> int | None:
        shape, itemsize = table.get(name, (None, 0))
        return None if shape is None else _numel(shape) * itemsize

    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    ops = []
    for node in model.graph.node:
        macs, other = _macs(node, shape_of), _other_flops(node, shape_of)
        sizes = [nbytes(n) for n in [*node.input, *node.output] if n]
        ops.append(
            OpCost(
                name=node.name or f"{node.op_type}_{len(ops)}",
                op_type=node.op_type,
                output_shape=shape_of(node.output[0]) if node.output else None,
                macs=macs or 0,
                flops=2 * (macs or 0) + (other or 0),
                param_bytes=sum(nbytes(n) or 0 for n in node.input if n in inits),
                bytes_moved=sum(s for s in sizes if s is not None),
                known=macs is not None and other is not None,
                int8=_is_int8(node, producer),
            )
        )
    # Constant nodes hold weights too (some exporters emit them instead of initializers).
    params = sum(_numel(shape_of(name)) or 0 for name in inits)
    param_bytes = sum(nbytes(name) or 0 for name in inits)
    return GraphCost(
        ops=ops,
        macs=sum(o.macs for o in ops),
        flops=sum(o.flops for o in ops),
        params=params,
        param_bytes=param_bytes,
        activation_peak_bytes=peak_activation_bytes(model, nbytes, inits),
        bytes_moved=sum(o.bytes_moved for o in ops),
        unknown_ops=sum(not o.known for o in ops),
        inputs=inputs,
        guessed_dims=guessed,
        int8_macs=sum(o.macs for o in ops if o.int8),
    )


def peak_activation_bytes(model, nbytes, constants: set[str]) -> int:
    """Largest sum of live non-constant tensor bytes over the steps of the stored order."""
    nodes = list(model.graph.node)
    end = len(nodes)  # graph outputs stay live past the last node
    start: dict[str, int] = {}
    last: dict[str, int] = {}
    for vi in model.graph.input:
        if vi.name not in constants:
            start[vi.name] = last[vi.name] = 0
    for i, node in enumerate(nodes):
        for name in node.input:
            if name in start:
                last[name] = max(last[name], i)
        for name in node.output:
            if name and name not in constants:
                start[name] = last[name] = i
    for vi in model.graph.output:
        if vi.name in last:
            last[vi.name] = end
    delta = np.zeros(end + 2, dtype=np.int64)
    for name, s in start.items():
        size = nbytes(name) or 0
        delta[s] += size
        delta[last[name] + 1] -= size
    return int(np.cumsum(delta).max(initial=0))


def roofline(
    cost: GraphCost,
    *,
    peak_gflops: float,
    bandwidth_gbs: float,
    threads: int,
    cores: int,
    peak_int8_gops: float | None = None,
) -> dict[str, Any]:
    """Lower-bound time of `cost` on a device; compute peak scales with the threads used, and
    int8 ops run at `peak_int8_gops` when the device has an int8 peak (else at the FP32 one)."""
    share = min(threads, cores) / cores
    flops_per_s = peak_gflops * 1e9 * share
    int8_per_s = (peak_int8_gops or peak_gflops) * 1e9 * share
    bytes_per_s = bandwidth_gbs * 1e9
    compute_ms = memory_ms = total_ms = compute_bound_ms = 0.0
    for op in cost.ops:
        rate = int8_per_s if op.int8 else flops_per_s
        c, m = op.flops / rate * 1e3, op.bytes_moved / bytes_per_s * 1e3
        compute_ms += c
        memory_ms += m
        total_ms += max(c, m)
        compute_bound_ms += c if c >= m else 0.0
    return {
        "latency_ms": total_ms,
        "compute_ms": compute_ms,
        "memory_ms": memory_ms,
        "bound": "compute" if compute_bound_ms >= total_ms / 2 else "memory",
        "effective_gflops": flops_per_s / 1e9,
        "effective_int8_gops": int8_per_s / 1e9 if cost.int8_macs else None,
        "bandwidth_gbs": bandwidth_gbs,
    }

"""Tensor shapes for the cost model: ONNX shape inference, then onnxruntime's symbolic one.

ONNX's inference knows only the standard domains, so an onnxruntime-optimized or -quantized
graph (MatMulNBits, FusedMatMul, DynamicQuantizeMatMul, ...) loses every shape from the first
com.microsoft node on, and the cost model would count those MACs as unknown. onnxruntime's
symbolic shape inference (onnxruntime.tools.symbolic_shape_infer) knows many contrib ops; the
MatMul-like ones it lacks are added here. Its public `infer_shapes` is all-or-nothing and, on
a partial result, writes `sym_shape_infer_temp.onnx` into the working directory, so its loop is
driven here instead, keeping whatever it inferred. It is a private API: any failure leaves the
ONNX result as it was.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np

Table = dict[str, tuple[list[int] | None, int]]

_log = logging.getLogger(__name__)


def tensor_table(model) -> Table:
    """name -> (shape or None, bytes per element) for every tensor whose type is known."""
    from onnx import helper

    table: Table = {}

    def add(vi) -> None:
        t = vi.type.tensor_type
        if not t.elem_type:
            return
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).itemsize
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        known = t.HasField("shape") and all(v is not None for v in dims)
        table[vi.name] = (dims if known else None, itemsize)

    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        add(vi)
    for init in model.graph.initializer:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        table[init.name] = (list(init.dims), itemsize)
    return table


def infer(model) -> tuple[Any, Table]:
    """(the model with ONNX-inferred value_info, the shape table), symbolic inference filling
    what ONNX left unknown. `model` has its input shapes bound already."""
    import onnx

    inferred = model
    # An op that inference cannot handle: keep what the stored shapes allow.
    with contextlib.suppress(Exception):
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    table = tensor_table(inferred)
    outputs = [o for n in inferred.graph.node for o in n.output if o]
    if all(table.get(o, (None, 0))[0] is not None for o in outputs):
        return inferred, table
    for name, entry in _symbolic(model).items():
        if entry[0] is not None and table.get(name, (None, 0))[0] is None:
            table[name] = entry
    return inferred, table


def _symbolic(model) -> Table:
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except ImportError:
        return {}
    # auto_merge: reconcile a symbolic dim with a value; guess_output_rank: carry on past an
    # op it does not know (its outputs get symbolic dims, i.e. unknown here) instead of stopping.
    s = SymbolicShapeInference(2**31 - 1, True, True, 0)
    try:
        for op, fn in _contrib_rules(s).items():
            s.dispatcher_.setdefault(op, fn)
        s._preprocess(model)
        while s.run_:
            s._infer_impl()
        s._update_output_from_vi()  # graph outputs declared with symbolic dims
    except Exception as err:  # private API drift or an op it chokes on: keep what it found
        _log.debug("symbolic shape inference stopped: %s", err)
    out = getattr(s, "out_mp_", None)
    return tensor_table(out) if out is not None else {}


def _contrib_rules(s) -> dict[str, Any]:
    """Shape rules for MatMul-like onnxruntime contrib ops the symbolic inference lacks."""
    from onnx import helper

    def attr(node, name: str, default: int) -> int:
        found = [helper.get_attribute_value(a) for a in node.attribute if a.name == name]
        return int(found[0]) if found else default

    def put(node, shape: list, dtype_input: int) -> None:
        dtype = s.known_vi_[node.input[dtype_input]].type.tensor_type.elem_type
        vi = s.known_vi_[node.output[0]]
        vi.CopyFrom(helper.make_tensor_value_info(node.output[0], dtype, shape))

    def matmul(a_idx: int, b_idx: int, dtype_input: int, *, trans: bool = False):
        def rule(node) -> None:
            a, b = list(s._get_shape(node, a_idx)), list(s._get_shape(node, b_idx))
            if len(a) < 2 or len(b) < 2:
                return
            if trans and attr(node, "transA", 0):
                a[-2], a[-1] = a[-1], a[-2]
            if trans and attr(node, "transB", 0):
                b[-2], b[-1] = b[-1], b[-2]
            put(node, [*s._broadcast_shapes(a[:-2], b[:-2]), a[-2], b[-1]], dtype_input)

        return rule

    def gemm(a_idx: int, b_idx: int, dtype_input: int):
        def rule(node) -> None:
            a, b = s._get_shape(node, a_idx), s._get_shape(node, b_idx)
            m = a[1] if attr(node, "transA", 0) else a[0]
            n = b[0] if attr(node, "transB", 0) else b[1]
            # QGemm with y_zero_point: a quantized output, typed like that zero point.
            quantized_out = node.op_type == "QGemm" and len(node.input) > 8 and node.input[8]
            put(node, [m, n], 8 if quantized_out else dtype_input)

        return rule

    return {
        # onnxruntime's fused convolutions (Conv + activation) and the QOperator convolution
        # have Conv's shape rule: same input, weight and attribute positions.
        "FusedConv": _conv(s, put, 1, 0),
        "QLinearConv": _conv(s, put, 3, 7),
        "FusedMatMul": matmul(0, 1, 0, trans=True),
        "DynamicQuantizeMatMul": matmul(0, 1, 0),  # float A, int8 B: float out
        "MatMulIntegerToFloat": matmul(0, 1, 2),  # integer A and B: out typed like a_scale
        "FusedGemm": gemm(0, 1, 0),
        "QGemm": gemm(0, 3, 1),  # A, a_scale, a_zp, B, ...; float out typed like a_scale
    }


def _conv(s, put, w_index: int, dtype_input: int):
    """Conv's output arithmetic on x (input 0) and the weight (FusedConv: input 1; QLinearConv:
    input 3), typed like input `dtype_input` (QLinearConv: y_zero_point). Explicit pads only,
    which is what exporters write."""
    from onnx import helper

    def rule(node) -> None:
        x, w = s._get_shape(node, 0), s._get_shape(node, w_index)
        if not x or not w or not all(isinstance(d, int) for d in [*x[2:], *w[2:]]):
            return
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        rank = len(w) - 2
        pads = list(attrs.get("pads", [0] * 2 * rank))
        strides = list(attrs.get("strides", [1] * rank))
        dil = list(attrs.get("dilations", [1] * rank))
        out = [x[0], w[0]]
        for i in range(rank):
            span = (w[2 + i] - 1) * dil[i] + 1
            out.append((x[2 + i] + pads[i] + pads[i + rank] - span) // strides[i] + 1)
        put(node, out, dtype_input)

    return rule

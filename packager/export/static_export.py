"""A static-embedding student as an ONNX graph (the export stage's handler for arch static).

Inputs input_ids and attention_mask (batch, sequence), as the runtimes feed every text model;
a Gather of the table and of the per-token weights (0 for special tokens), a weighted mean over
the sequence and L2 normalisation give "sentence_embedding" (batch, dim); a classifier adds
one Gemm: "logits" (batch, classes). quantize.embeddings int4 turns the table's Gather into
onnxruntime's GatherBlockQuantized (packager.quantize.embeddings), int8 into int8 rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from packager.distill.text.static import StaticStudent
from packager.export.hf_export import EMBEDDING, LOGITS


def export_static(student: StaticStudent, out: Path, opset: int) -> str:
    """Write the graph to `out` (opset >= 13); return its output's name."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    inits = [
        const("table", student.table.astype(np.float32)),
        const("token_weights", student.weights.astype(np.float32)),
        const("axis_sequence", np.array([1], np.int64)),
        const("axis_last", np.array([-1], np.int64)),
        const("eps", np.array(1e-9, np.float32)),
        const("eps_norm", np.array(1e-12, np.float32)),
    ]
    n = helper.make_node
    nodes = [
        n("Gather", ["table", "input_ids"], ["vectors"], name="word_embeddings", axis=0),
        n("Gather", ["token_weights", "input_ids"], ["weights"], name="token_weights", axis=0),
        n("Cast", ["attention_mask"], ["mask"], name="mask_float", to=TensorProto.FLOAT),
        n("Mul", ["weights", "mask"], ["w"], name="masked_weights"),
        n("Unsqueeze", ["w", "axis_last"], ["w3"], name="weights_3d"),
        n("Mul", ["vectors", "w3"], ["weighted"], name="weighted_vectors"),
        n("ReduceSum", ["weighted", "axis_sequence"], ["total"], name="sum", keepdims=0),
        n("ReduceSum", ["w", "axis_sequence"], ["count"], name="count", keepdims=1),
        n("Max", ["count", "eps"], ["count_safe"], name="count_safe"),
        n("Div", ["total", "count_safe"], ["mean"], name="mean"),
        # ReduceSum takes its axes as an input from opset 13 (ReduceL2 only from 18)
        n("Mul", ["mean", "mean"], ["squares"], name="squares"),
        n("ReduceSum", ["squares", "axis_last"], ["norm2"], name="norm2", keepdims=1),
        n("Sqrt", ["norm2"], ["norm"], name="norm"),
        n("Max", ["norm", "eps_norm"], ["norm_safe"], name="norm_safe"),
    ]
    dim = student.table.shape[1]
    if student.head is None:
        nodes.append(n("Div", ["mean", "norm_safe"], [EMBEDDING], name="normalize"))
        output = helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["batch", dim])
    else:
        nodes.append(n("Div", ["mean", "norm_safe"], ["pooled"], name="normalize"))
        inits += [
            const("head_weight", student.head.astype(np.float32)),
            const("head_bias", student.bias.astype(np.float32)),
        ]
        nodes.append(
            n("Gemm", ["pooled", "head_weight", "head_bias"], [LOGITS], name="head", transB=1)
        )
        output = helper.make_tensor_value_info(
            LOGITS, TensorProto.FLOAT, ["batch", student.head.shape[0]]
        )
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask")
    ]
    graph = helper.make_graph(nodes, "static_student", inputs, [output], inits)
    opsets = [helper.make_opsetid("", opset)]
    # The lowest IR version the opset allows, not onnx's newest: older onnxruntimes (Node's,
    # the C++ runtime's) refuse an IR version they do not know.
    ir = helper.find_min_ir_version_for(opsets)
    model = helper.make_model(graph, opset_imports=opsets, producer_name="edgepack", ir_version=ir)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return output.name


def parity(student: StaticStudent, out: Path, tok, texts: list[str]) -> float:
    """Max |onnx - numpy| over `texts`, in batches of several sizes (several padded lengths)."""
    import onnxruntime as ort

    from packager.data.text import encode

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    for size in (1, 3, 8, 16):
        for i in range(0, min(len(texts), 4 * size), size):
            feeds = encode(tok, texts[i : i + size], ["input_ids", "attention_mask"])
            got = sess.run(None, feeds)[0]
            v = student.embed(feeds["input_ids"], feeds["attention_mask"])
            want = v if student.head is None else v @ student.head.T + student.bias
            worst = max(worst, float(np.abs(got - want).max()))
    return worst

"""Graph rewrites around onnxruntime's quantizers: stable node names (exclusion works by
name), Gemm as MatMul (MatMulNBits covers only MatMul), and float outputs for static QDQ."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def name_nodes(model) -> int:
    """Give every unnamed node a stable name (op_type + index): exclusion works by name."""
    taken = {n.name for n in model.graph.node if n.name}
    count = 0
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name, count = name, count + 1
            taken.add(name)
    return count


def gemm_to_matmul(model) -> int:
    """Rewrite Gemm with constant weights as MatMul (+ Add): MatMulNBits covers only MatMul,
    and torch exports Linear layers on 2-D inputs as Gemm."""
    import onnx
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    nodes, rewritten, replaced = [], 0, set()
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        has_bias = len(node.input) > 2 and bool(node.input[2])
        beta = attrs.get("beta", 1.0)
        if (
            node.op_type != "Gemm"
            or node.input[1] not in inits
            or attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or (has_bias and beta != 1.0 and node.input[2] not in inits)
        ):
            nodes.append(node)
            continue
        replaced.add(node.input[1])
        w = numpy_helper.to_array(inits[node.input[1]])
        w = w.T if attrs.get("transB", 0) else w
        w_name = f"{node.name}.weight_kn"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), w_name))
        mm_out = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=node.name))
        if has_bias:
            bias = node.input[2]
            if beta != 1.0:
                b = numpy_helper.to_array(inits[bias]) * beta
                bias = f"{node.name}.bias_scaled"
                model.graph.initializer.append(numpy_helper.from_array(b.astype(w.dtype), bias))
            nodes.append(
                helper.make_node("Add", [mm_out, bias], [node.output[0]], name=f"{node.name}_bias")
            )
        rewritten += 1
    if not rewritten:  # untouched (and onnx's checker knows no onnxruntime-only op, e.g. the
        return 0  # genai builder's SimplifiedLayerNormalization in the default domain)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    drop_unused_initializers(model.graph, replaced)
    onnx.checker.check_model(model)
    return rewritten


def keep_outputs_float(path: Path) -> int:
    """Drop the QuantizeLinear -> DequantizeLinear pair quantize_static puts on each graph
    output, so the last op's float result is the output (what NNCF does: no quantizer after
    the last layer). 8-bit logits clip at the calibrated range, so confident answers beyond it
    tie, and their step (range / 255, 0.1 on EfficientNet-Lite0's logits) flips near ties; the
    last op still runs on int8 inputs. Returns how many outputs were freed."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    freed = 0
    for out in graph.output:
        dq = producer.get(out.name)
        q = (
            producer.get(dq.input[0])
            if dq is not None and dq.op_type == "DequantizeLinear"
            else None
        )
        if q is None or q.op_type != "QuantizeLinear" or readers.get(q.output[0]) != 1:
            continue
        src = q.input[0]
        if src in outputs or readers.get(src) != 1 or src not in producer:
            continue  # the float tensor is read elsewhere (or is an input): leave the pair
        last = producer[src]
        last.output[list(last.output).index(src)] = out.name
        graph.node.remove(q)
        graph.node.remove(dq)
        freed += 1
        drop_unused_initializers(graph, {*q.input[1:], *dq.input[1:]})
    if freed:
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return freed


def drop_unused_initializers(graph, candidates: set[str]) -> None:
    """Remove the initializers among `candidates` that no node or graph output reads any more."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used or t.name not in candidates]
    del graph.initializer[:]
    graph.initializer.extend(kept)

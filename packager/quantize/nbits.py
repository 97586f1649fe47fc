"""onnxruntime's MatMulNBits quantizer (int4 / int8 weight-only MatMuls), and the one MatMul a
language model's head is."""

from __future__ import annotations

from packager.config import QuantizeConfig


def lm_head_nodes(model) -> list[str]:
    """The MatMul whose output is the graph's `logits` (a language model's head)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    node = producers.get("logits")
    while node is not None and node.op_type != "MatMul":
        node = producers.get(node.input[0]) if node.op_type in ("Add", "Identity", "Cast") else None
    return [node.name] if node is not None else []


def nbits(model, cfg: QuantizeConfig, bits: int, **which):
    """onnxruntime's MatMulNBits quantizer over the graph's MatMuls (block_size, symmetric,
    accuracy_level from the config; `which`: nodes_to_exclude or nodes_to_include)."""
    from packager.quantize.ort_nbits import nbits_module, quiet

    q = nbits_module().MatMulNBitsQuantizer(
        model,
        bits=bits,
        block_size=cfg.block_size,
        is_symmetric=cfg.int4_symmetric,
        accuracy_level=cfg.int4_accuracy_level or None,
        op_types_to_quantize=("MatMul",),
        **which,
    )
    with quiet():
        q.process()
    return q.model.model

"""A decoder graph that computes logits for the last position only (onnxruntime-genai's
prune_lm_head: Gather(axis 1, index -1) + Unsqueeze before the head), seen with every
position's logits again, for teacher-forced measurements (perplexity, agreement): the same
nodes and weights, the head fed the whole sequence. Generation uses the pruned graph itself."""

from __future__ import annotations

from pathlib import Path


def _pruned_head(model):
    """(head, gather, unsqueeze) when the graph's head reads Unsqueeze(Gather(h, -1, axis=1))."""
    from onnx import numpy_helper

    producers = {o: n for n in model.graph.node for o in n.output}
    head = producers.get("logits")
    while head is not None and head.op_type not in ("MatMul", "MatMulNBits"):
        head = producers.get(head.input[0]) if head.op_type in ("Add", "Cast", "Identity") else None
    unsqueeze = producers.get(head.input[0]) if head is not None else None
    if unsqueeze is None or unsqueeze.op_type != "Unsqueeze":
        return None
    gather = producers.get(unsqueeze.input[0])
    if gather is None or gather.op_type != "Gather":
        return None
    if {a.name: a.i for a in gather.attribute}.get("axis") != 1:
        return None
    index = next((t for t in model.graph.initializer if t.name == gather.input[1]), None)
    const = producers.get(gather.input[1])
    if index is None and const is not None and const.op_type == "Constant":
        index = next((a.t for a in const.attribute if a.name == "value"), None)
    if index is None or numpy_helper.to_array(index).tolist() != -1:
        return None
    return head, gather, unsqueeze


def is_pruned(path: Path) -> bool:
    import onnx

    return _pruned_head(onnx.load(str(path), load_external_data=False)) is not None


def all_positions(src: Path, dst: Path) -> bool:
    """Write `src` to `dst` with logits for every position when its head is pruned to the last
    one; False (nothing written) when it is not."""
    import onnx

    model = onnx.load(str(src))
    found = _pruned_head(model)
    if found is None:
        return False
    head, gather, unsqueeze = found
    head.input[0] = gather.input[0]
    for node in (unsqueeze, gather):
        model.graph.node.remove(node)
    logits = next(o for o in model.graph.output if o.name == "logits")
    dim = logits.type.tensor_type.shape.dim[1]
    dim.Clear()
    dim.dim_param = "sequence_length"
    onnx.save(model, str(dst))
    return True

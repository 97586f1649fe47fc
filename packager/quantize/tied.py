"""A tied word table stored once, in int4: the embedding lookup reads the LM head's own
MatMulNBits blocks (onnxruntime's GatherBlockQuantized), as onnxruntime-genai's builder does for
its int4 models (shared_embeddings).

A float graph with tied embeddings looks the input tokens up in the head's weight (the builder
writes Transpose(lm_head weight) -> Gather; one float table). Once the head is MatMulNBits, that
Transpose would keep the whole float table alive beside the int4 one; here it goes, and the
Gather reads the head's packed rows instead: the table is one int4 copy (a vocabulary of 49,152 x
576 is 14 MiB plus scales instead of 108 MiB more).
"""

from __future__ import annotations

from pathlib import Path


def _head(model):
    """The MatMulNBits node whose output is the graph's `logits` (through Add/Cast/Identity)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    node = producers.get("logits")
    while node is not None and node.op_type != "MatMulNBits":
        node = producers.get(node.input[0]) if node.op_type in ("Add", "Identity", "Cast") else None
    return node


def share_tied_table(path: Path) -> bool:
    """Rewrite, in place, the Transpose(head weight) -> Gather lookup of the model at `path` as
    Reshape(head's int4 blocks) -> GatherBlockQuantized; True when it did. Needs a 4-bit
    symmetric head (no zero points) whose blocks tile the hidden size exactly."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    head = _head(model)
    if head is None:
        return False
    attrs = {a.name: a.i for a in head.attribute}
    if attrs.get("bits") != 4 or (len(head.input) > 3 and head.input[3]):
        return False
    k, n, block = attrs["K"], attrs["N"], attrs["block_size"]
    producers = {o: x for x in model.graph.node for o in x.output}
    inits = {t.name: t for t in model.graph.initializer}
    lookup = next(
        (
            g
            for g in model.graph.node
            if g.op_type == "Gather"
            and (t := producers.get(g.input[0])) is not None
            and t.op_type == "Transpose"
            and t.input[0] in inits
            and head.input[1].startswith(t.input[0])
            and list(inits[t.input[0]].dims) == [k, n]
        ),
        None,
    )
    blocks = inits.get(head.input[1])  # (N, K / block, block / 2) uint8
    if lookup is None or k % block or blocks is None or blocks.dims[0] != n:
        return False
    transpose = producers[lookup.input[0]]
    shape_name = f"{head.input[1]}_rows_shape"
    model.graph.initializer.append(
        numpy_helper.from_array(np.array([n, k // 2], np.int64), shape_name)
    )
    rows = f"{head.input[1]}_rows"
    new = [
        helper.make_node("Reshape", [head.input[1], shape_name], [rows], name=f"{lookup.name}/rows"),
        helper.make_node(
            "GatherBlockQuantized", [rows, lookup.input[1], head.input[2]], [lookup.output[0]],
            name=f"{lookup.name}/GatherBlockQuantized", domain="com.microsoft",
            bits=4, block_size=block, gather_axis=0, quantize_axis=1,
        ),
    ]  # fmt: skip
    for node in (lookup, transpose):
        model.graph.node.remove(node)
    for i, node in enumerate(new):  # they read only initializers and input_ids: first is fine
        model.graph.node.insert(i, node)
    used = {i for x in model.graph.node for i in x.input}
    if transpose.input[0] not in used:
        model.graph.initializer.remove(inits[transpose.input[0]])
    onnx.save(model, str(path))
    return True

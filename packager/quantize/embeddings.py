"""Embedding tables: where most of a small encoder's bytes are (a MiniLM word table is 11.7 of
its 22.7 M parameters), found by shape and quantized to int4 blocks with onnxruntime's
GatherBlockQuantized (it runs in onnxruntime's CPU provider on x86 and arm64, and in wasm)."""

from __future__ import annotations

from pathlib import Path

# A Gather of a constant table this tall is an embedding table: word tables, and BERT's 512
# position rows (Optimum's dynamic INT8 quantizes those too; fp32, they are 0.8 of MiniLM's MB).
EMBEDDING_ROWS = 512


def embedding_gathers(model) -> list[str]:
    """Names of the Gather nodes that look rows up in a large constant table (word, position
    embeddings), where most of an encoder's bytes are."""
    tables = {
        t.name for t in model.graph.initializer if len(t.dims) == 2 and t.dims[0] >= EMBEDDING_ROWS
    }
    return [n.name for n in model.graph.node if n.op_type == "Gather" and n.input[0] in tables]


def int4_gathers(path: Path, names: list[str], block_size: int, symmetric: bool) -> None:
    """Rewrite the named Gathers of the model at `path` as int4 GatherBlockQuantized (blocks of
    `block_size` values along the embedding axis), in place."""
    import onnx

    from packager.quantize.nbits import nbits_module, quiet

    if not names:
        return
    model = onnx.load(str(path))
    # nodes_to_include widens op_types_to_quantize instead of narrowing it: every other Gather
    # (a position or token-type table already int8, an index lookup) is excluded by name.
    others = [n.name for n in model.graph.node if n.op_type == "Gather" and n.name not in names]
    q = nbits_module().MatMulNBitsQuantizer(
        model,
        bits=4,
        block_size=block_size,
        is_symmetric=symmetric,
        nodes_to_exclude=others,
        op_types_to_quantize=("Gather",),
        quant_axes=(("Gather", 1),),
    )
    with quiet():
        q.process()
    q.model.save_model_to_file(str(path), use_external_data_format=False)


def int8_gathers(path: Path, names: list[str]) -> None:
    """Rewrite the named Gathers of the model at `path` to look rows up in an int8 table with
    one symmetric scale per row (Gather of the int8 rows and of their scales, Cast, Mul), in
    place: onnxruntime's GatherBlockQuantized is 4-bit only, and int8 keeps an LM's word table
    at a quarter of its fp32 size with row-exact scales."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    if not names:
        return
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    nodes = list(model.graph.node)
    uses: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    # A table shared with another node (tied input/output embeddings) stays as it is.
    for node in [n for n in nodes if n.name in names and uses.get(n.input[0]) == 1]:
        table = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        scale = np.maximum(np.abs(table).max(axis=1), 1e-12) / 127.0
        q = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
        base = node.input[0]
        model.graph.initializer.remove(inits[base])
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(q, base + "_int8"),
                numpy_helper.from_array(scale.astype(np.float32), base + "_scale"),
            ]
        )
        ids, out, p = node.input[1], node.output[0], node.name
        new = [
            helper.make_node("Gather", [base + "_int8", ids], [p + "_q"], name=p + "_q8", axis=0),
            helper.make_node("Gather", [base + "_scale", ids], [p + "_s"], name=p + "_s8", axis=0),
            helper.make_node(
                "Cast", [p + "_q"], [p + "_f"], name=p + "_cast", to=onnx.TensorProto.FLOAT
            ),
            helper.make_node("Unsqueeze", [p + "_s", p + "_axis"], [p + "_su"], name=p + "_unsq"),
            helper.make_node("Mul", [p + "_f", p + "_su"], [out], name=p + "_dq"),
        ]
        model.graph.initializer.append(
            numpy_helper.from_array(np.array([-1], np.int64), p + "_axis")
        )
        at = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for k, n in enumerate(new):
            model.graph.node.insert(at + k, n)
    onnx.save(model, str(path))

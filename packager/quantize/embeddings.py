"""Embedding tables: where most of a small encoder's bytes are (a MiniLM word table is 11.7 of
its 22.7 M parameters), found by shape and quantized to int4 blocks with onnxruntime's
GatherBlockQuantized (it runs in onnxruntime's CPU provider on x86 and arm64, and in wasm)."""

from __future__ import annotations

import logging
from pathlib import Path

from packager.config import QuantizeConfig

EMBEDDING_ROWS = 1024  # a Gather of a constant table this tall is an embedding table


def embedding_gathers(model) -> list[str]:
    """Names of the Gather nodes that look rows up in a large constant table (word, position
    embeddings), where most of an encoder's bytes are."""
    tables = {
        t.name for t in model.graph.initializer if len(t.dims) == 2 and t.dims[0] >= EMBEDDING_ROWS
    }
    return [n.name for n in model.graph.node if n.op_type == "Gather" and n.input[0] in tables]


def int4_gathers(path: Path, names: list[str], cfg: QuantizeConfig) -> None:
    """Rewrite the named Gathers of the model at `path` as int4 GatherBlockQuantized (blocks of
    embedding_block_size along the embedding axis), in place."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    if not names:
        return
    model = onnx.load(str(path))
    # nodes_to_include widens op_types_to_quantize instead of narrowing it: every other Gather
    # (a position or token-type table already int8, an index lookup) is excluded by name.
    others = [n.name for n in model.graph.node if n.op_type == "Gather" and n.name not in names]
    q = MatMulNBitsQuantizer(
        model,
        bits=4,
        block_size=cfg.embedding_block_size,
        is_symmetric=cfg.int4_symmetric,
        nodes_to_exclude=others,
        op_types_to_quantize=("Gather",),
        quant_axes=(("Gather", 1),),
    )
    logger = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = logger.level
    logger.setLevel(logging.WARNING)  # it logs every node at INFO
    try:
        q.process()
    finally:
        logger.setLevel(level)
    q.model.save_model_to_file(str(path), use_external_data_format=False)


def int4_round_trip(table, block: int, symmetric: bool):
    """The table as GatherBlockQuantized will return it (float32, same shape): each row's blocks
    quantized and dequantized with onnxruntime's own int4 arithmetic. A student trained on this
    table (frozen) learns with exactly the vectors it ships with."""
    import numpy as np
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantizer as Q

    data = np.asarray(table, dtype=np.float32)
    rows, width = data.shape
    out = np.empty_like(data)
    cube = data.reshape(rows, width, 1)
    for i in range(0, width, block):
        part = cube[:, i : i + block, :]
        if symmetric:
            q, scale = Q.quant_slice_symmetric(part)
            out[:, i : i + block] = (q.astype(np.float32) * scale)[..., 0]
        else:
            q, scale, zero = Q.quant_slice_asymmetric(part)
            out[:, i : i + block] = ((q.astype(np.float32) - zero) * scale)[..., 0]
    return out

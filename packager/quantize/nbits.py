"""onnxruntime's MatMulNBits quantizer (int4 / int8 weight-only MatMuls, int4 Gathers), the one
MatMul a language model's head is, and the quantizer module imported without its side effect.

At import, onnxruntime's matmul_nbits_quantizer calls `logging.basicConfig(level=INFO)` on the
root logger, so every later onnxruntime quantizer (which logs each node with `logging.info`)
prints hundreds of lines into a build's output. `nbits_module` undoes that: the root logger
keeps its handlers and level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from packager.onnx_utils import (
    nbits_module,  # the one loader: onnx_utils (int4_round_trip) needs it too
)


@contextmanager
def quiet() -> Iterator[None]:
    """The quantizer's own logger held at ERROR: it logs every node at INFO, and warns that it
    raises the model's IR version to 10 for int4 tensors (which is what we want) on every run."""
    logger = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def lm_head_nodes(model) -> list[str]:
    """The MatMul whose output is the graph's `logits` (a language model's head)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    node = producers.get("logits")
    while node is not None and node.op_type != "MatMul":
        node = producers.get(node.input[0]) if node.op_type in ("Add", "Identity", "Cast") else None
    return [node.name] if node is not None else []


def nbits(model, bits: int, block_size: int, symmetric: bool, accuracy_level: int, **which):
    """onnxruntime's MatMulNBits quantizer over the graph's MatMuls (`which`: nodes_to_exclude
    or nodes_to_include)."""
    q = nbits_module().MatMulNBitsQuantizer(
        model,
        bits=bits,
        block_size=block_size,
        is_symmetric=symmetric,
        accuracy_level=accuracy_level or None,
        op_types_to_quantize=("MatMul",),
        **which,
    )
    with quiet():
        q.process()
    return q.model.model

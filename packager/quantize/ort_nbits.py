"""onnxruntime's matmul_nbits_quantizer module, imported without its side effect on logging.

At import, that module calls `logging.basicConfig(level=INFO)` on the root logger, so every later
onnxruntime quantizer (which logs each node with `logging.info`) prints hundreds of lines into a
build's output. Importing it here undoes that: the root logger keeps its handlers and level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType


def nbits_module() -> ModuleType:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import matmul_nbits_quantizer

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return matmul_nbits_quantizer


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

"""The Python runtime on text: embedding postprocessing and raw-string samples."""

from __future__ import annotations

import numpy as np
import pytest
from edgepack_runtime.errors import UnsupportedPackageError
from edgepack_runtime.postprocessing import make_postprocessor

MANIFEST = {"outputs": [{"name": "h", "dtype": "float32", "shape": ["batch", "sequence", 2]}]}


def _post(**spec):
    return make_postprocessor(
        {**MANIFEST, "postprocessing": {"type": "embedding", "output": "h", **spec}}
    )


def test_in_graph_embeddings_are_passed_through():
    x = np.array([[3.0, 4.0]], np.float32)
    pred = _post(pooling="mean", normalize=True)({"h": x})
    assert np.array_equal(pred.embeddings, x) and pred.labels is None


def test_runtime_pooling_uses_the_attention_mask_and_normalises():
    h = np.array([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]], np.float32)
    feeds = {"attention_mask": np.array([[1, 1, 0]])}
    mean = _post(pooling="mean", normalize=False, in_graph=False)({"h": h}, feeds).embeddings
    assert np.allclose(mean, [[2.0, 2.0]])
    unit = _post(pooling="mean", normalize=True, in_graph=False)({"h": h}, feeds).embeddings
    assert np.allclose(unit, [[2**-0.5, 2**-0.5]])
    cls = _post(pooling="cls", in_graph=False)({"h": h}).embeddings
    assert np.allclose(cls, [[1.0, 0.0]])
    with pytest.raises(UnsupportedPackageError, match="attention_mask"):
        _post(pooling="mean", in_graph=False)({"h": h})
    with pytest.raises(UnsupportedPackageError, match="not supported"):
        _post(pooling="max")

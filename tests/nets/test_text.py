"""Running transformers models on text: pooling of token states into sentence embeddings."""

from __future__ import annotations

import pytest
import torch

from packager.nets.text import pool


def test_mean_pooling_ignores_padding_and_cls_takes_the_first_token():
    h = torch.arange(12.0).reshape(1, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0]])
    assert torch.equal(pool(h, mask, "mean", False), torch.tensor([[1.5, 2.5, 3.5]]))
    assert torch.equal(pool(h, mask, "cls", False), h[:, 0])
    assert torch.linalg.norm(pool(h, mask, "mean", True)).item() == pytest.approx(1.0)

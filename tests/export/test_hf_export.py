"""Export of transformers models: optimum first, torch.onnx.export as the fallback; the graph
matches torch at several batch and sequence shapes and takes only the inputs it needs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from packager.export.hf_export import export_optimum, export_torch, finish_graph
from packager.onnx_utils import io_spec, session

# The legacy (dynamo=False) exporter announces its own deprecation and tracer caveats.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]
SHAPES = [(1, 1), (1, 7), (3, 16), (8, 40)]  # (batch, sequence): 40 > anything traced
INFO = {"pooling": "mean", "normalize": True}


def _feeds(batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + batch * 100 + seq)
    ids = rng.integers(5, 60, (batch, seq))
    lengths = rng.integers(1, seq + 1, batch)
    lengths[0] = seq  # one row fills the batch, the others are padded
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _reference(model, feeds, task):
    from packager.nets.text import pool

    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        if task == "text-classification":
            return out.logits.numpy()
        return pool(
            out.last_hidden_state, torch.from_numpy(feeds["attention_mask"]), "mean", True
        ).numpy()


def _export(folder, task, exporter, path):
    from packager.data.text import encode, load_tokenizer
    from packager.nets.text import input_names
    from packager.sources.hf import load_model

    model = load_model(folder, task)
    if exporter == "optimum":
        export_optimum(folder, path, task, 17)
    else:
        example = encode(
            load_tokenizer(folder, 32), ["goal match team win", "rain"], input_names(model)
        )
        export_torch(model, example, path, task, INFO, opset=17, dynamo=False)
    finish_graph(path, task, INFO, model.config.hidden_size)
    return model


@pytest.mark.parametrize("exporter", ["optimum", "torch"])
@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_export_matches_torch_at_several_batch_and_sequence_shapes(
    exporter, task, tiny_classifier, tiny_encoder, tmp_path
):
    folder = tiny_classifier if task == "text-classification" else tiny_encoder
    path = tmp_path / "model.onnx"
    model = _export(folder, task, exporter, path)
    spec = io_spec(path)
    assert [i["name"] for i in spec["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i["shape"] == ["batch", "sequence"] for i in spec["inputs"])
    out = spec["outputs"]
    if task == "text-classification":
        assert [(o["name"], o["shape"]) for o in out] == [("logits", ["batch", 3])]
    else:
        assert [(o["name"], o["shape"]) for o in out] == [("sentence_embedding", ["batch", 32])]
    sess = session(path)
    for batch, seq in SHAPES:
        feeds = _feeds(batch, seq)
        got = sess.run(None, feeds)[0]
        ref = _reference(model, feeds, task)
        assert got.shape == ref.shape == (batch, 3 if task == "text-classification" else 32)
        assert np.max(np.abs(got - ref)) < 1e-5, (batch, seq)
    if task == "feature-extraction":  # pooled and L2-normalised inside the graph
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_graph_takes_only_the_inputs_the_model_uses(tmp_path):
    """DistilBERT has no token_type_ids: the export must not invent one."""
    from transformers import DistilBertConfig, DistilBertModel

    from packager.export.hf_export import EMBEDDING

    torch.manual_seed(0)
    cfg = DistilBertConfig(
        vocab_size=64, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=32
    )
    model = DistilBertModel(cfg).eval()
    path = tmp_path / "d.onnx"
    example = {k: v for k, v in _feeds(2, 5).items() if k != "token_type_ids"}
    export_torch(model, example, path, "feature-extraction", INFO, opset=17, dynamo=False)
    spec = io_spec(path)
    assert [i["name"] for i in spec["inputs"]] == ["input_ids", "attention_mask"]
    assert spec["outputs"][0]["name"] == EMBEDDING
    feeds = {k: v for k, v in _feeds(3, 9).items() if k != "token_type_ids"}
    got = session(path).run(None, feeds)[0]
    assert np.max(np.abs(got - _reference(model, feeds, "feature-extraction"))) < 1e-5

"""The static student's ONNX graph (packager.export.static_export) matches its numpy reference
at several batch sizes, for embeddings and for a classifier head."""

from __future__ import annotations

import numpy as np
import onnx

from packager.distill.text.static import StaticStudent
from packager.export.static_export import export_static, parity


def test_static_graph_matches_numpy_with_and_without_a_head(tmp_path):
    from tiny_models import tiny_bert_folder, tiny_texts

    from packager.data.text import load_tokenizer

    folder = tiny_bert_folder(tmp_path / "enc", task="feature-extraction")
    tok = load_tokenizer(folder, 32)
    rng = np.random.default_rng(0)
    weights = np.ones(128, np.float32)
    weights[:5] = 0  # the special tokens
    texts = [r["text"] for r in tiny_texts(40)]
    for head in (None, rng.normal(size=(3, 16)).astype(np.float32)):
        s = StaticStudent(rng.normal(size=(128, 16)).astype(np.float32), weights, head)
        s.bias = None if head is None else np.zeros(3, np.float32)
        out = tmp_path / f"m{head is None}.onnx"
        name = export_static(s, out, 18)
        assert name == ("sentence_embedding" if head is None else "logits")
        assert parity(s, out, tok, texts) < 1e-5
        model = onnx.load(str(out))
        assert model.ir_version <= 10  # onnxruntime-node knows it

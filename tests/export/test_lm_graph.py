"""A last-position-logits graph (the builder's prune_lm_head) seen with every position's logits
(packager/export/lm_graph.py): what perplexity and agreement read. Its logits at every position
are the ones the pruned graph gives one step at a time."""

from __future__ import annotations

import edgepack_runtime.generation as gen
import numpy as np
import onnx
import pytest
from tiny_models import tiny_causal_lm_folder

from packager.export import genai_builder
from packager.export.lm_export import export_genai
from packager.export.lm_graph import all_positions, is_pruned
from packager.onnx_utils import session

pytestmark = pytest.mark.skipif(
    not genai_builder.installed(), reason="onnxruntime-genai's builder: make genai-builder"
)


def test_the_all_positions_view_gives_the_logits_of_every_step(tmp_path):
    folder = tiny_causal_lm_folder(tmp_path / "qwen2", "qwen2", layers=2, hidden=64)
    pruned, view = tmp_path / "pruned.onnx", tmp_path / "view.onnx"
    export_genai(folder, pruned)
    assert is_pruned(pruned) and all_positions(pruned, view) and not is_pruned(view)
    ids = np.array([[9, 31, 4, 77, 120, 6]], np.int64)
    dec = gen.Decoder(session(view))
    every = dec.forward(ids, keep_all=True).all_logits[0]
    assert every.shape[0] == ids.shape[1]
    step = gen.Decoder(session(pruned))
    one = [step.forward(ids[:, :1]).logits[0]] + [
        step.forward(ids[:, k : k + 1]).logits[0] for k in range(1, ids.shape[1])
    ]
    assert np.abs(every - np.stack(one)).max() < 1e-4
    assert not all_positions(view, tmp_path / "again.onnx")  # nothing to undo
    assert len(onnx.load(str(view)).graph.node) == len(onnx.load(str(pruned)).graph.node) - 2

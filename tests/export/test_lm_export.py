"""KV-cache export of tiny causal LMs of every family (optimum text-generation-with-past):
prefill and 8 cached decode steps match torch, 32 greedy tokens are identical."""

from __future__ import annotations

import pytest
import torch

from packager.export.lm_export import export_lm, parity
from packager.sources.lm import load_causal_lm

PROMPTS = [[5, 17, 42, 9, 33], [70, 3, 12]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tiny_models import LM_FAMILIES, tiny_causal_lm_folder

    root = tmp_path_factory.mktemp("lm-export")
    out = {}
    for family in LM_FAMILIES:
        folder = tiny_causal_lm_folder(root / family, family, layers=2)
        onnx = root / f"{family}.onnx"
        export_lm(folder, onnx, opset=18)
        out[family] = (folder, onnx)
    return out


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3", "gpt2", "phi3"])
def test_kv_cache_export_matches_torch_on_prefill_decode_and_greedy(exported, family):
    import onnx

    folder, path = exported[family]
    names = [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
    assert {"input_ids", "past_key_values.0.key", "past_key_values.1.value"} <= set(names)
    p = parity(load_causal_lm(folder), path, PROMPTS)
    assert p["prefill_max_abs_diff"] < 1e-4 and p["decode_max_abs_diff"] < 1e-4
    assert p["decode_steps"] == 8 and p["greedy_tokens"] == 32 and p["greedy_identical"]


def test_parity_reports_a_model_that_is_not_the_exported_one(exported):
    folder, path = exported["llama"]
    other = load_causal_lm(folder)
    with torch.no_grad():
        for w in other.parameters():
            w.add_(torch.randn_like(w) * 0.5)
    p = parity(other, path, PROMPTS)
    assert p["prefill_max_abs_diff"] > 1e-2 and not p["greedy_identical"]


@pytest.mark.parametrize("family", ["llama", "qwen3", "phi3"])
def test_the_torch_fallback_exports_the_same_cache_layout(exported, family, tmp_path):
    """export.exporter = torch (or auto, when optimum has no config for the architecture):
    torch.onnx.export of a cache-aware wrapper, checked by the same parity."""
    folder, _ = exported[family]
    path = tmp_path / "torch.onnx"
    assert export_lm(folder, path, opset=18, exporter="torch") == "torch"
    p = parity(load_causal_lm(folder), path, PROMPTS)
    assert (
        p["prefill_max_abs_diff"] < 1e-4
        and p["decode_max_abs_diff"] < 1e-4
        and p["greedy_identical"]
    )

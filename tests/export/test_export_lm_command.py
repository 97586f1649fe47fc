"""`edgepack export FOLDER --task text-generation-with-past -o OUT.onnx` (issue 28): the command
failed its own parity check on every causal LM (it never fed past key values). Now a KV-cache
graph comes out for tiny random Llama, Qwen2, Phi-3 (onnxruntime-genai's model builder) and GPT-2
(the builder does not know it: optimum), and this test checks it again itself: prefill and decode
steps with past key values fed, against torch, and greedy tokens identical."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from tiny_models import tiny_causal_lm_folder

from packager.cli import cli
from packager.export import genai_builder
from packager.onnx_utils import session
from packager.sources.lm import load_causal_lm

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]
BUILT_BY = {
    "llama": "onnxruntime-genai model builder 0.18.0 (transformers 5.23.0)",
    "qwen2": "onnxruntime-genai model builder 0.18.0 (transformers 5.23.0)",
    "phi3": "onnxruntime-genai model builder 0.18.0 (transformers 5.23.0)",
    "gpt2": "optimum-onnx main_export",
}
needs_builder = pytest.mark.skipif(
    not genai_builder.installed(),
    reason=f"onnxruntime-genai's builder is not installed at {genai_builder.home()} "
    "(make genai-builder)",
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One tiny folder per family (heads of 16) and one stage cache for the module: a second
    export of the same folder is a cache hit."""
    root = tmp_path_factory.mktemp("lm-folders")
    made = {f: tiny_causal_lm_folder(root / f, f, layers=2, hidden=64) for f in BUILT_BY}
    return made, root / "cache"


def _export(cache, folder, out, *extra):
    argv = ["export", str(folder), "--task", "text-generation-with-past", "-o", str(out)]
    argv += ["--cache-dir", str(cache), *extra]
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def _torch_steps(model, prompt, steps):
    """torch's last-position logits after the prompt and after each of `steps` greedy tokens."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([prompt]), use_cache=True)
        logits = [out.logits[0, -1].numpy()]
        for _ in range(steps):
            token = int(out.logits[0, -1].argmax())
            out = model(
                input_ids=torch.tensor([[token]]),
                past_key_values=out.past_key_values,
                use_cache=True,
            )
            logits.append(out.logits[0, -1].numpy())
    return logits


def _onnx_steps(path, prompt, steps, kv_heads, head_dim):
    """The same with onnxruntime alone: every past_key_values input fed, present -> past."""
    sess = session(path)
    names = [i.name for i in sess.get_inputs()]
    outs = [o.name for o in sess.get_outputs()]
    past = {n: np.zeros((1, kv_heads, 0, head_dim), np.float32) for n in names if "past" in n}
    ids, length, logits = list(prompt), 0, []
    for _ in range(steps + 1):
        total = length + len(ids)
        feeds = {"input_ids": np.array([ids], np.int64), **past}
        if "attention_mask" in names:
            feeds["attention_mask"] = np.ones((1, total), np.int64)
        if "position_ids" in names:
            feeds["position_ids"] = np.arange(length, total, dtype=np.int64)[None]
        got = dict(zip(outs, sess.run(None, feeds), strict=True))
        past = {n: got["present." + n.removeprefix("past_key_values.")] for n in past}
        logits.append(got["logits"][0, -1])
        ids, length = [int(got["logits"][0, -1].argmax())], total
    return logits


@pytest.mark.parametrize("family", ["llama", "qwen2", "phi3", "gpt2"])
def test_export_with_past_matches_torch_on_prefill_and_cached_decode(tmp_path, folders, family):
    if BUILT_BY[family].startswith("onnxruntime-genai") and not genai_builder.installed():
        pytest.skip("onnxruntime-genai's builder is not installed (make genai-builder)")
    folder = folders[0][family]
    out = tmp_path / f"{family}.onnx"
    res = _export(folders[1], folder, out)
    assert res.exit_code == 0, res.output
    assert f"\n{BUILT_BY[family]}, task text-generation-with-past, opset " in res.output
    record = json.loads((tmp_path / f"{family}.export.json").read_text())
    assert record["exporter"] == BUILT_BY[family]
    assert [r["inputs"]["input_ids"] for r in record["parity"]] == [[1, 13], [1, 1]]
    assert record["parity_max_abs_diff"] <= 1e-4
    inputs = {i.name for i in onnx.load(str(out)).graph.input}
    assert {"input_ids", "past_key_values.0.key", "past_key_values.1.value"} <= inputs

    model = load_causal_lm(folder)
    cfg = model.config
    kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    prompt = [7, 40, 3, 99, 12, 5, 61]
    want = _torch_steps(model, prompt, 6)
    got = _onnx_steps(out, prompt, 6, kv, cfg.hidden_size // cfg.num_attention_heads)
    assert max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True)) < 1e-4
    assert [int(g.argmax()) for g in got] == [int(w.argmax()) for w in want]


@needs_builder
def test_the_builder_graph_has_fused_attention_and_last_position_logits(tmp_path, folders):
    """What makes decoding fast: GroupQueryAttention with rotary inside (no position_ids), one
    QKV MatMul per layer, logits of the last position only, a cache buffer it may share."""
    out = tmp_path / "llama.onnx"
    assert _export(folders[1], folders[0]["llama"], out).exit_code == 0
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    gqa = [n for n in model.graph.node if n.op_type == "GroupQueryAttention"]
    assert len(gqa) == 2 and all(
        a.i == 1 for n in gqa for a in n.attribute if a.name == "do_rotary"
    )
    assert ops.count("MatMul") == 2 * 5 + 1  # a layer's qkv, o, gate, up, down; the head
    assert "position_ids" not in {i.name for i in model.graph.input}
    logits = next(o for o in model.graph.output if o.name == "logits")
    assert logits.type.tensor_type.shape.dim[1].dim_value == 1
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[genai_builder.KV_META] == genai_builder.SHARED


def test_export_exporter_genai_on_an_architecture_it_does_not_know_is_one_error_line(
    tmp_path, folders
):
    res = _export(folders[1], folders[0]["gpt2"], tmp_path / "gpt2.onnx", "--exporter", "genai")
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "onnxruntime-genai's builder" in lines[0], res.output
    assert not (tmp_path / "gpt2.onnx").exists()


def test_export_exporter_optimum_on_llama_feeds_past_key_values(tmp_path):
    """The exact command of the issue (optimum's graph, position_ids and all) passes too."""
    folder = tiny_causal_lm_folder(tmp_path / "llama", "llama", layers=2)
    res = _export(tmp_path / "cache", folder, tmp_path / "l.onnx", "--exporter", "optimum")
    assert res.exit_code == 0, res.output
    assert "\noptimum-onnx main_export, task text-generation-with-past" in res.output
    assert "past_sequence_length [13, 20]" in res.output

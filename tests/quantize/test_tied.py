"""A tied word table stored once in int4 (packager/quantize/tied.py): the builder's float graph
looks tokens up in Transpose(head weight); once the head is MatMulNBits the lookup reads the
head's own int4 blocks, so the float table leaves the file and the vectors are exactly the
head's dequantized rows."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from tiny_models import tiny_causal_lm_folder

from packager.export import genai_builder
from packager.export.lm_export import export_genai
from packager.onnx_utils import session
from packager.quantize.nbits import nbits
from packager.quantize.tied import share_tied_table

pytestmark = pytest.mark.skipif(
    not genai_builder.installed(), reason="onnxruntime-genai's builder: make genai-builder"
)


@pytest.fixture(scope="module")
def int4_tied(tmp_path_factory):
    """The builder's graph of a tied tiny Llama, its MatMuls int4 (the head too)."""
    import json

    root = tmp_path_factory.mktemp("tied")
    folder = tiny_causal_lm_folder(root / "llama", "llama", layers=1, hidden=64)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["tie_word_embeddings"] = True
    (folder / "config.json").write_text(json.dumps(cfg))
    export_genai(folder, root / "fp32.onnx")
    q = nbits(
        onnx.load(str(root / "fp32.onnx")), 4, block_size=32, symmetric=True, accuracy_level=0
    )
    onnx.save(q, str(root / "int4.onnx"))
    return root


def _hidden_after_lookup(path, ids):
    """The embedding lookup's output, made a graph output."""
    model = onnx.load(str(path))
    name = next(n.output[0] for n in model.graph.node if n.op_type.startswith("Gather") and
                "input_ids" in n.input)  # fmt: skip
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, 1, None))
    path.with_suffix(".probe.onnx").write_bytes(model.SerializeToString())
    sess = session(path.with_suffix(".probe.onnx"))
    return sess.run([name], _feeds(sess, ids))[0]


def _feeds(sess, ids):
    feeds = {
        "input_ids": np.array([ids], np.int64),
        "attention_mask": np.ones((1, len(ids)), np.int64),
    }
    for i in sess.get_inputs():
        if i.name.startswith("past_key_values."):
            feeds[i.name] = np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
    return feeds


def test_the_lookup_reads_the_heads_int4_blocks_and_the_float_table_goes(int4_tied, tmp_path):
    shared = tmp_path / "shared.onnx"
    shutil.copyfile(int4_tied / "int4.onnx", shared)
    assert share_tied_table(shared)
    model = onnx.load(str(shared))
    ops = [n.op_type for n in model.graph.node]
    assert "GatherBlockQuantized" in ops and "Transpose" not in ops
    assert "lm_head.MatMul.weight" not in {t.name for t in model.graph.initializer}
    assert shared.stat().st_size < 0.75 * (int4_tied / "int4.onnx").stat().st_size

    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    packed, scales = inits["lm_head.MatMul.weight_Q4"], inits["lm_head.MatMul.weight_scales"]
    low, high = (packed & 0x0F).astype(np.int8), (packed >> 4).astype(np.int8)
    q = np.stack([low, high], -1).reshape(packed.shape[0], packed.shape[1], -1) - 8
    table = (q * scales[..., None]).reshape(packed.shape[0], -1)  # the head's rows, dequantized
    ids = [3, 17, 40, 3]
    got = _hidden_after_lookup(shared, ids)[0]
    assert np.abs(got - table[ids]).max() < 1e-6


def test_a_graph_without_a_tied_lookup_is_left_alone(int4_tied, tmp_path):
    untouched = tmp_path / "fp32.onnx"
    shutil.copyfile(int4_tied / "fp32.onnx", untouched)  # its head is no MatMulNBits
    before = untouched.read_bytes()
    assert not share_tied_table(untouched)
    assert untouched.read_bytes() == before

"""int4 for language models: MatMulNBits with its accuracy_level, the LM head at 8 bits or
kept fp32, int8 embeddings (per-row scales), and the speed warning naming a slow setting."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from packager.quantize.nbits import lm_head_nodes
from packager.quantize.quantizer import Quantizer
from packager.quantize.schemes import quantize_config
from packager.quantize.speed import decode_step_feeds, slow_causes


@pytest.fixture(scope="module")
def fp32(tiny_lm_build):
    return tiny_lm_build.artifact("export").file()


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _quantize(fp32, tmp_path, **cfg):
    q = Quantizer(fp32, quantize_config(mode="int4", block_size=16, **cfg), tmp_path, None)
    out = tmp_path / "q.onnx"
    q.write(out)
    return out, q


def _logits(path, feeds):
    from packager.onnx_utils import session

    s = session(path)
    return s.run(["logits"], feeds)[0]


def test_int4_with_accuracy_level_int8_head_and_int8_embeddings(fp32, tmp_path):
    out, q = _quantize(fp32, tmp_path, int4_accuracy_level=4, lm_head="int8", embeddings="int8")
    model = onnx.load(str(out))
    nbits = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    assert nbits and all(_attrs(n)["accuracy_level"] == 4 for n in nbits)
    head = [n for n in nbits if "lm_head" in n.name]
    assert len(head) == 1 and _attrs(head[0])["bits"] == 8
    s = q.settings()
    assert s["accuracy_level"] == 4 and s["lm_head"] == "int8" and s["embeddings"] == "int8"
    feeds = decode_step_feeds(fp32, past=4)
    ref, got = _logits(fp32, feeds), _logits(out, feeds)
    assert np.abs(got - ref).max() < 0.25 * np.abs(ref).max() + 0.1


def test_the_head_can_stay_fp32(fp32, tmp_path):
    out, _ = _quantize(fp32, tmp_path, lm_head="fp32")
    model = onnx.load(str(out))
    assert [
        n.op_type for n in model.graph.node if n.name in lm_head_nodes(onnx.load(str(fp32)))
    ] == ["MatMul"]


def test_decode_step_feeds_are_one_token_after_the_cached_ones(fp32):
    feeds = decode_step_feeds(fp32, past=5)
    assert feeds["input_ids"].shape == (1, 1) and feeds["attention_mask"].shape == (1, 6)
    assert feeds["position_ids"].tolist() == [[5]] and feeds["past_key_values.0.key"].shape[2] == 5


def test_the_speed_warning_names_a_slow_int4_accuracy_level():
    cpu = {"int8_dot_product": False, "neon": False, "avx2": False, "dotprod": False}
    causes = slow_causes(quantize_config(mode="int4", int4_accuracy_level=0), Counter(), cpu, 1.0)
    assert "int4_accuracy_level = 0" in causes[0] and "accuracy_level 4" in causes[0]
    # auto: the fastest this CPU runs (none here: 0, and the warning says so too)
    causes = slow_causes(quantize_config(mode="int4"), Counter(), cpu, 1.0)
    assert "int4_accuracy_level = 0" in causes[0]
    assert not any(
        "accuracy_level" in c
        for c in slow_causes(
            quantize_config(mode="int4", int4_accuracy_level=4), Counter(), cpu, 1.0
        )
    )


def test_int4_accuracy_level_auto_is_the_fastest_on_the_cpu_and_says_why():
    from packager.quantize.schemes.int4 import accuracy_level

    cfg = quantize_config(mode="int4")
    assert accuracy_level(cfg, {"avx2": True, "dotprod": False})[0] == 4
    assert accuracy_level(cfg, {"avx2": False, "dotprod": True})[0] == 4
    level, why = accuracy_level(cfg, {"avx2": False, "dotprod": False})
    assert level == 0 and "neither AVX2 nor Arm dot-product" in why
    assert accuracy_level(quantize_config(mode="int4", int4_accuracy_level=1))[0] == 1


def test_int8_embeddings_look_rows_up_in_an_int8_table_with_row_scales(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from packager.onnx_utils import session
    from packager.quantize.embeddings import int8_gathers

    table = np.random.default_rng(0).normal(0, 1, (1024, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"], name="embed")],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 8])],
        [numpy_helper.from_array(table, "table")],
    )
    path = tmp_path / "e.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    int8_gathers(path, ["embed"])
    model = onnx.load(str(path))
    assert {i.name: i.data_type for i in model.graph.initializer}["table_int8"] == TensorProto.INT8
    ids = np.array([0, 5, 1023], np.int64)
    got = session(path).run(None, {"ids": ids})[0]
    scale = np.abs(table[ids]).max(1, keepdims=True) / 127
    assert np.abs(got - table[ids]).max() <= scale.max() / 2 + 1e-6  # half a step per row


def test_fp16_keeps_float32_caches_so_the_decoder_runs_unchanged(fp32, tmp_path):
    from packager.edge_runtime import load_runtime
    from packager.onnx_utils import session

    q = Quantizer(fp32, quantize_config(mode="fp16"), tmp_path, None)
    out = tmp_path / "h.onnx"
    q.write(out)
    gen = load_runtime().generation
    a, b = gen.Decoder(session(fp32)), gen.Decoder(session(out))
    assert b.cache_dtype == np.float32  # keep_io_types: the KV cache stays float32
    prompt = [5, 9, 14, 3]
    ref, got = a.forward(np.asarray([prompt])).logits, b.forward(np.asarray([prompt])).logits
    assert np.abs(got - ref).max() < 1e-2 * max(1.0, np.abs(ref).max())

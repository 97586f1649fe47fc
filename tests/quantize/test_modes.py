"""Every mode on a tiny transformer: loads in onnxruntime, records size, metric and latency."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from pydantic import ValidationError

from packager.errors import RecipeError
from packager.onnx_utils import session, summary
from packager.quantize.graph import gemm_to_matmul


def _feeds(data):
    z = np.load(data)
    return {"input_ids": z["input_ids"][:4], "attention_mask": z["attention_mask"][:4]}


@pytest.mark.parametrize(
    ("mode", "op", "precision"),
    [
        ("dynamic", "DynamicQuantizeLinear", "int8"),
        ("static", "QuantizeLinear", "int8"),
        ("fp16", "Cast", "fp16"),
        ("int4", "MatMulNBits", "int4"),
    ],
)
def test_each_mode_loads_and_records_size_metric_and_latency(
    transformer, tmp_path, run_quantize, mode, op, precision
):
    art = run_quantize(
        transformer["model"],
        tmp_path,
        mode=mode,
        **({"calib": str(transformer["data"])} if mode == "static" else {}),
        eval=str(transformer["data"]),
        metric="agreement",
        speed_runs=5,
    )
    out = session(art.file()).run(None, _feeds(transformer["data"]))[0]
    assert out.shape == (4, 4) and np.isfinite(out).all()
    assert op in summary(art.file())["ops"]
    q = art.meta["quantization"]
    assert q["mode"] == mode and q["precision"] == precision == art.meta["precision"]
    assert 0 < art.meta["size_bytes"] < art.meta["fp32_size_bytes"]
    assert q["metric"]["name"] == "agreement" and q["metric"]["fp32"] == 1.0
    assert 0.5 <= q["metric"]["quantized"] <= 1.0 and q["metric"]["examples"] == 48
    assert q["speed"]["p50_ms"] > 0 and q["speed"]["fp32_p50_ms"] > 0 and q["speed"]["threads"] == 1
    assert "vnni" in q["speed"]["cpu"]


def test_int4_block_size_is_applied_and_fp16_io_types_are_selectable(
    transformer, tmp_path, run_quantize
):
    art = run_quantize(
        transformer["model"], tmp_path, mode="int4", block_size=16, speed_check=False
    )
    nodes = onnx.load(str(art.file())).graph.node
    blocks = {
        a.i
        for n in nodes
        if n.op_type == "MatMulNBits"
        for a in n.attribute
        if a.name == "block_size"
    }
    assert blocks == {16} and art.meta["quantization"]["block_size"] == 16
    half = run_quantize(
        transformer["model"], tmp_path, mode="fp16", keep_io_types=False, speed_check=False
    )
    assert half.meta["outputs"][0]["dtype"] == "float16"
    out = session(half.file()).run(None, _feeds(transformer["data"]))[0]
    assert out.dtype == np.float16
    kept = run_quantize(transformer["model"], tmp_path, mode="fp16", speed_check=False)
    assert kept.meta["outputs"][0]["dtype"] == "float32"


def test_nodes_are_excluded_by_name_pattern_and_op_type(transformer, tmp_path, run_quantize):
    art = run_quantize(
        transformer["model"],
        tmp_path,
        mode="int4",
        exclude_patterns=["/ff/*"],
        exclude_nodes=["/q/MatMul"],
        speed_check=False,
    )
    nodes = {n.name: n.op_type for n in onnx.load(str(art.file())).graph.node}
    assert nodes["/ff/ff.0/MatMul"] == "MatMul" and nodes["/q/MatMul"] == "MatMul"
    assert "MatMulNBits" in nodes.values()
    assert {"/q/MatMul", "/ff/ff.0/MatMul", "/ff/ff.2/MatMul"} <= set(
        art.meta["quantization"]["excluded_nodes"]
    )
    dyn = run_quantize(
        transformer["model"],
        tmp_path,
        mode="dynamic",
        exclude_op_types=["MatMul"],
        speed_check=False,
    )
    ops = summary(dyn.file())["ops"]
    assert ops["MatMul"] == 8 and ops["MatMulInteger"] == 1  # only the head (a Gemm) is int8


def test_unknown_node_name_is_refused_with_a_suggestion(transformer, tmp_path, run_quantize):
    with pytest.raises(RecipeError, match=r"no node named '/q/Matmul'.*did you mean /q/MatMul"):
        run_quantize(transformer["model"], tmp_path, mode="dynamic", exclude_nodes=["/q/Matmul"])


def test_static_without_calibration_data_says_what_to_do(transformer, tmp_path, run_quantize):
    with pytest.raises(RecipeError, match=r"quantize\.calib is required for mode=static"):
        run_quantize(transformer["model"], tmp_path, mode="static")


def test_gemm_rewrite_to_matmul_keeps_outputs(outlier):
    model = onnx.load(str(outlier["model"]))
    x = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    before = session(outlier["model"]).run(None, {"x": x})[0]
    assert gemm_to_matmul(model) == 3
    assert {n.op_type for n in model.graph.node} == {"MatMul", "Add", "Relu"}
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], before, rtol=1e-5, atol=1e-4)


def _weight_dequantizers(path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(integer weight, scale) of each DequantizeLinear feeding a MatMul/Gemm's weight input."""
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weight_inputs = {n.input[1] for n in graph.node if n.op_type in ("MatMul", "Gemm")}
    found = [
        (inits[n.input[0]], inits[n.input[1]])
        for n in graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and n.output[0] in weight_inputs
    ]
    assert found, "no quantized MatMul/Gemm weight in the model"
    return found


def _activation_zero_points(path) -> set[str]:
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return {
        str(inits[n.input[2]].dtype)
        for n in graph.node
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits
    }


def _per_channel(path) -> bool:
    return all(s.size > 1 for _, s in _weight_dequantizers(path))


def _widest_int8_weight(path) -> int:
    return max(int(np.abs(w.astype(np.int32)).max()) for w, _ in _weight_dequantizers(path))


@pytest.mark.parametrize(
    ("settings", "check"),
    [
        # defaults (on x86 without VNNI): 7-bit weights, one scale per output channel
        ({}, lambda p: _widest_int8_weight(p) <= 64 and _per_channel(p)),
        ({"format": "qoperator"}, lambda p: "QLinearMatMul" in summary(p)["ops"]),
        ({"reduce_range": False}, lambda p: _widest_int8_weight(p) > 64),
        (
            {"weight_type": "uint8"},
            lambda p: {w.dtype for w, _ in _weight_dequantizers(p)} == {np.dtype(np.uint8)},
        ),
        ({"activation_type": "int8"}, lambda p: _activation_zero_points(p) == {"int8"}),
        ({"per_channel": False}, lambda p: all(s.size == 1 for _, s in _weight_dequantizers(p))),
    ],
    ids=["defaults", "qoperator", "full-range", "uint8-weights", "int8-activations", "per-tensor"],
)
def test_static_settings_are_applied_and_recorded(
    transformer, tmp_path, run_quantize, settings, check, without_vnni
):
    art = run_quantize(
        transformer["model"],
        tmp_path,
        mode="static",
        calib=str(transformer["data"]),
        speed_check=False,
        **settings,
    )
    out = session(art.file()).run(None, _feeds(transformer["data"]))[0]
    assert out.shape == (4, 4) and np.isfinite(out).all()
    assert check(art.file())
    q = art.meta["quantization"]
    asked = {
        "format": "qdq",
        "reduce_range": True,
        "weight_type": "int8",
        "activation_type": "uint8",
        "per_channel": True,
        **settings,
    }
    recorded = {k: q[k] for k in asked}
    recorded["format"] = {"QDQ": "qdq", "QOperator": "qoperator"}[q["format"]]
    assert recorded == asked


@pytest.fixture(scope="module")
def big_vocab(tmp_path_factory):
    """The tiny transformer with a 2048-row word table (an embedding table to the quantizer)."""
    from tiny_models import tiny_transformer_onnx

    root = tmp_path_factory.mktemp("vocab")
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 2048, (32, 8))
    np.savez(root / "tokens.npz", input_ids=ids, attention_mask=np.ones_like(ids))
    return {
        "model": tiny_transformer_onnx(root / "v.onnx", vocab=2048),
        "data": root / "tokens.npz",
    }


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("mode", ["dynamic", "int4", "fp16"])
def test_int4_embeddings_replace_the_word_table_and_keep_each_tokens_vector(
    big_vocab, tmp_path, run_quantize, mode
):
    base = run_quantize(big_vocab["model"], tmp_path, mode=mode, speed_check=False)
    art = run_quantize(
        big_vocab["model"], tmp_path, mode=mode, embeddings="int4", speed_check=False
    )
    assert "GatherBlockQuantized" in _ops(art.file())
    assert art.meta["quantization"]["embeddings"] == "int4"
    assert art.meta["quantization"]["embedding_tables"] == 1
    assert art.file().stat().st_size < base.file().stat().st_size
    # tokens -> vectors: every row of the table, looked up through the int4 graph, is the
    # original row to within one step of its block (16 levels over the block's range)
    from onnx import helper, numpy_helper

    src = onnx.load(str(big_vocab["model"]))
    table = next(numpy_helper.to_array(t) for t in src.graph.initializer if t.dims[:1] == [2048])
    q = onnx.load(str(art.file()))
    gbq = next(n for n in q.graph.node if n.op_type == "GatherBlockQuantized")
    del q.graph.output[:]
    q.graph.output.append(
        helper.make_tensor_value_info(gbq.output[0], onnx.TensorProto.FLOAT, None)
    )
    probe = tmp_path / "rows.onnx"
    onnx.save(q, str(probe))
    ids = np.arange(2048).reshape(64, 32)
    rows = session(probe).run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
    rows = rows.reshape(2048, -1)
    step = np.abs(table).reshape(2048, -1, 32).max(-1, keepdims=True) / 7
    assert np.all(np.abs(rows - table).reshape(2048, -1, 32) <= step + 1e-6)
    cos = (rows * table).sum(1) / np.linalg.norm(rows, axis=1) / np.linalg.norm(table, axis=1)
    assert cos.min() > 0.98


def test_embeddings_can_stay_fp32_and_int8_tables_need_the_dynamic_mode(
    big_vocab, tmp_path, run_quantize
):
    art = run_quantize(
        big_vocab["model"], tmp_path, mode="dynamic", embeddings="fp32", speed_check=False
    )
    m = onnx.load(str(art.file()))
    gather = next(n for n in m.graph.node if n.op_type == "Gather")
    table = next(t for t in m.graph.initializer if t.name == gather.input[0])
    assert table.data_type == onnx.TensorProto.FLOAT and list(table.dims) == [2048, 64]
    with pytest.raises(
        ValidationError, match=r"mode fp16 takes embeddings auto, fp32, int4 \(int8"
    ):
        run_quantize(
            big_vocab["model"], tmp_path, mode="fp16", embeddings="int8", speed_check=False
        )


def test_plain_quantize_makes_a_transformers_word_table_int8_rows(big_vocab, tmp_path):
    """`edgepack quantize MODEL -o OUT` with no options on a transformer: dynamic (no convs), and
    the word table int8 with a scale per row, as Optimum's dynamic INT8 shrinks it (the table
    left float32 kept a MiniLM at 58 MB beside Optimum's 23)."""
    from click.testing import CliRunner

    from packager.cli import cli

    out = tmp_path / "q.onnx"
    res = CliRunner().invoke(
        cli, ["quantize", str(big_vocab["model"]), "-o", str(out), "--no-speed-check",
              "--cache-dir", str(tmp_path / "c")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    q = onnx.load(str(out))
    tables = {t.name: t for t in q.graph.initializer if t.dims[:1] == [2048]}
    assert {t.data_type for t in tables.values()} == {onnx.TensorProto.INT8, onnx.TensorProto.FLOAT}
    scales = next(t for t in tables.values() if t.data_type == onnx.TensorProto.FLOAT)
    assert list(scales.dims) == [2048]  # one scale a row
    report = json.loads((tmp_path / "q.quantize.json").read_text())
    assert report["mode"] == "dynamic" and report["embeddings"] == "int8"

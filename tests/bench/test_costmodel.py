"""Spec for packager/bench/costmodel.py: counts that match hand arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from packager.bench.costmodel import analyze, roofline
from packager.cli import cli

# conv1: out 4x8x8 = 256 positions x (3 in-channels x 3 x 3) = 6912
# dw:    out 256 positions x (1 in-channel per group x 3 x 3) = 2304
# matmul: 10 outputs x 256 = 2560;  gemm: 5 outputs x 10 = 50
HAND_MACS = 6912 + 2304 + 2560 + 50


def test_macs_of_conv_depthwise_matmul_gemm_equal_the_hand_count(cost_model: Path) -> None:
    cost = analyze(cost_model, batch=1)
    per_op = {op.name: op.macs for op in cost.ops}
    assert per_op == {
        "conv1": 6912,
        "relu": 0,
        "dw": 2304,
        "flatten": 0,
        "matmul": 2560,
        "gemm": 50,
    }
    assert cost.macs == HAND_MACS
    # FLOPs: 2 per MAC, plus Relu's 256 outputs and Gemm's 5 bias adds.
    assert cost.flops == 2 * HAND_MACS + 256 + 5
    assert cost.unknown_ops == 0


def test_macs_scale_with_the_bound_batch(cost_model: Path) -> None:
    assert analyze(cost_model, batch=3).macs == 3 * HAND_MACS
    assert analyze(cost_model, batch=3).inputs == {"x": [3, 3, 8, 8]}


def test_parameter_bytes_count_every_initializer(cost_model: Path) -> None:
    cost = analyze(cost_model)
    params = 4 * 3 * 9 + 4 * 9 + 256 * 10 + 10 * 5 + 5
    assert cost.params == params and cost.param_bytes == 4 * params


def test_peak_activation_memory_matches_the_hand_computed_lifetimes(lifetime_model: Path) -> None:
    # Bytes: x 1024, a 1024, b 2048, c 512, y 1536. Live per step (inclusive):
    # step 0 Relu: x + a = 2048; step 1 Concat: a + b = 3072;
    # step 2 MatMul: a + b + c = 3584; step 3 Concat: a + c + y = 3072.
    cost = analyze(lifetime_model)
    assert cost.activation_peak_bytes == 3584
    assert cost.param_bytes == 512 * 128 * 4  # W is a parameter, not an activation


def test_roofline_takes_the_slower_of_compute_and_memory_per_op(cost_model: Path) -> None:
    cost = analyze(cost_model)
    fast_memory = roofline(cost, peak_gflops=1.0, bandwidth_gbs=1e6, threads=4, cores=4)
    assert fast_memory["bound"] == "compute"
    assert fast_memory["latency_ms"] == pytest.approx(cost.flops / 1e9 * 1e3, rel=1e-3)
    # One of four cores gets a quarter of the peak: four times the compute time.
    one_core = roofline(cost, peak_gflops=1.0, bandwidth_gbs=1e6, threads=1, cores=4)
    assert one_core["compute_ms"] == pytest.approx(4 * fast_memory["compute_ms"])
    slow_memory = roofline(cost, peak_gflops=1e6, bandwidth_gbs=0.001, threads=4, cores=4)
    assert slow_memory["bound"] == "memory"
    assert slow_memory["latency_ms"] == pytest.approx(cost.bytes_moved / 1e6 * 1e3, rel=1e-3)


def test_inspect_prints_the_per_op_cost_table(cost_model: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(cost_model)])
    assert result.exit_code == 0, result.output
    assert "conv1" in result.output and "6,912" in result.output
    assert f"total MACs {HAND_MACS:,}" in result.output


def _save(graph, path: Path, *, contrib: bool = False) -> Path:
    import onnx
    from onnx import helper

    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] * contrib)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, path)
    return path


# x [1, 4, 64] -> fc1 [64, 32]: 4 x 32 x 64; scores r @ r^T: 4 x 4 x 32; mix scores @ r:
# 4 x 32 x 4; fc2 [32, 16]: 4 x 16 x 32.
ATTENTION_MACS = 8192 + 512 + 512 + 2048


@pytest.fixture(scope="module")
def attention_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x [batch, seq, 64] -> fc1 -> Relu r -> scores = r @ r^T -> mix = scores @ r -> fc2: two
    weight MatMuls (int4/int8 candidates) and a transposed one, which onnxruntime's extended
    optimization fuses into FusedMatMul."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
        for n, s in (("W1", (64, 32)), ("W2", (32, 16)))
    ]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1], name="t"),
            helper.make_node("MatMul", ["r", "t"], ["s"], name="scores"),
            helper.make_node("MatMul", ["s", "r"], ["c"], name="mix"),
            helper.make_node("MatMul", ["c", "W2"], ["y"], name="fc2"),
        ],
        "attention_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 16])],
        weights,
    )
    return _save(graph, tmp_path_factory.mktemp("cost") / "attention_like.onnx")


def _int4(src: Path, dst: Path) -> Path:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(onnx.load(str(src)), bits=4, block_size=32, is_symmetric=True)
    q.process()
    q.model.save_model_to_file(str(dst), use_external_data_format=False)
    return dst


def _dynamic_extended(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization import quantize_dynamic

    from packager.export.passes import ort_optimize

    quantize_dynamic(str(src), str(dst.with_suffix(".dyn.onnx")))
    ort_optimize(dst.with_suffix(".dyn.onnx"), dst, "extended")
    return dst


def _extended(src: Path, dst: Path) -> Path:
    from packager.export.passes import ort_optimize

    ort_optimize(src, dst, "extended")
    return dst


@pytest.mark.parametrize(
    ("variant", "contrib_ops"),
    [
        (_int4, {"MatMulNBits"}),
        (_extended, {"FusedMatMul"}),
        (_dynamic_extended, {"DynamicQuantizeMatMul", "FusedMatMul"}),
    ],
    ids=["int4", "fp32-extended", "dynamic-int8-extended"],
)
def test_contrib_ops_count_the_macs_of_their_float_twins(
    attention_like: Path, tmp_path: Path, variant, contrib_ops
) -> None:
    import onnx

    model = variant(attention_like, tmp_path / "variant.onnx")
    ops = {n.op_type for n in onnx.load(str(model)).graph.node}
    assert contrib_ops <= ops  # the variant really has the onnxruntime-only ops
    fp32 = analyze(attention_like, dims={"seq": 4})
    cost = analyze(model, dims={"seq": 4})
    assert fp32.macs == ATTENTION_MACS and fp32.unknown_ops == 0
    assert cost.macs == fp32.macs and cost.unknown_ops == 0
    # The shapes behind the counts came through: the graph output is fully known.
    assert cost.ops[-1].output_shape == [1, 4, 16]


def test_fused_and_integer_contrib_ops_get_shapes_that_onnxruntime_agrees_with(
    tmp_path: Path,
) -> None:
    """FusedMatMul with both inputs transposed and MatMulIntegerToFloat, which neither ONNX
    nor onnxruntime's own symbolic inference shapes: the added rules match a real run."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 16)).astype(np.float32)
    bq = rng.integers(-64, 64, (32, 4)).astype(np.int8)
    graph = helper.make_graph(
        [
            # x [b, 16, 8]^T @ W [32, 16]^T -> [b, 8, 32]: K = 16
            helper.make_node(
                "FusedMatMul", ["x", "W"], ["f"], domain="com.microsoft", transA=1, transB=1,
                name="fused",
            ),
            helper.make_node("DynamicQuantizeLinear", ["f"], ["fq", "fs", "fz"], name="dql"),
            # [b, 8, 32] @ [32, 4] -> [b, 8, 4]: K = 32
            helper.make_node(
                "MatMulIntegerToFloat", ["fq", "Bq", "fs", "bs", "fz"], ["y"],
                domain="com.microsoft", name="int_mm",
            ),
        ],
        "contrib",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(bq, "Bq"),
            numpy_helper.from_array(np.full(4, 0.01, np.float32), "bs"),
        ],
    )  # fmt: skip
    path = _save(graph, tmp_path / "contrib.onnx", contrib=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((2, 16, 8)).astype(np.float32)
    (y,) = sess.run(None, {"x": x})
    cost = analyze(path, batch=2)
    per_op = {op.name: (op.macs, op.output_shape) for op in cost.ops}
    assert per_op["fused"] == (2 * 8 * 32 * 16, [2, 8, 32])
    assert per_op["int_mm"] == (2 * 8 * 4 * 32, list(y.shape))
    assert cost.unknown_ops == 0


def test_attention_ops_are_unknown_rather_than_free(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node(
                "MultiHeadAttention", ["q", "k", "v"], ["y"], domain="com.microsoft", num_heads=2
            )
        ],
        "mha",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 8]) for n in "qkv"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])],
    )
    cost = analyze(_save(graph, tmp_path / "mha.onnx", contrib=True))
    assert cost.unknown_ops == 1 and not cost.ops[0].known


def _qdq(model: Path, out: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.rows = iter([{"x": rng.standard_normal((1, 3, 8, 8), np.float32)}] * 4)

        def get_next(self):
            return next(self.rows, None)

    quantize_static(str(model), str(out), Reader(), quant_format=QuantFormat.QDQ)
    return out


def test_int8_ops_are_priced_at_the_int8_peak_where_the_target_has_dot_product(
    cost_model: Path, tmp_path: Path
) -> None:
    # main: estimated rows priced int8 at the FP32 peak, so int8 was never faster on a target.
    from packager.bench.suite import estimate
    from packager.bench.targets import load_targets

    int8 = _qdq(cost_model, tmp_path / "qdq.onnx")
    cost = analyze(int8)
    fused = {op.name for op in cost.ops if op.int8}
    assert {"conv1", "dw", "matmul", "gemm"} <= fused  # Conv/MatMul/Gemm between DQ nodes
    assert cost.int8_macs == HAND_MACS and analyze(cost_model).int8_macs == 0
    profiles = load_targets()
    rpi5, rpi4 = profiles["rpi5"], profiles["rpi4"]
    fp32 = estimate(cost_model, rpi5, threads=4)["estimate"]
    q = estimate(int8, rpi5, threads=4)
    assert q["estimate"]["effective_int8_gops"] == rpi5.peak_int8_gops.value
    assert q["estimate"]["compute_ms"] < fp32["compute_ms"]
    assert any("int8 dot-product peak (614.4 GOP/s)" in n for n in q["notes"])
    assert "peak_int8_gops" in q["estimate"]["sources"]
    old = estimate(int8, rpi4, threads=4)
    assert old["estimate"]["effective_int8_gops"] == rpi4.peak_gflops.value
    assert any("rpi4 has no int8 dot-product instructions" in n for n in old["notes"])


def test_an_int8_peak_without_dot_product_instructions_is_refused(tmp_path: Path) -> None:
    from packager.bench.errors import BenchError
    from packager.bench.targets import load_profile

    (tmp_path / "t.yaml").write_text(
        "name: t\ndescription: a board\narch: aarch64\ncpu: A53\ncores: 4\nmemory_mb: 512\n"
        "isa: [neon]\npeak_int8_gops: {value: 10, derived: true, source: 'made up for a test'}\n"
    )
    with pytest.raises(BenchError, match="peak_int8_gops needs int8 dot-product"):
        load_profile(tmp_path / "t.yaml")

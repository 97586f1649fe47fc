"""Bias correction for static int8 Convs: the weights it assumes are the ones onnxruntime writes,
it removes the mean error rounding adds (a dense and a depthwise conv), and a Conv kept in
float keeps its bias."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from packager.onnx_utils import session
from packager.quantize.bias import conv_weights, correct_graph, input_means, rounded, shift


def _weights(rng, shape):
    w = rng.normal(size=shape).astype(np.float32) * 0.05
    w.reshape(shape[0], -1)[:, 0] = 3.0  # one large tap a channel: the rest round coarsely
    return w


def _model(path, seed=0):
    """x [N, 4, 8, 8] -> Conv 3x3 (8, pad 1) -> Relu -> depthwise Conv 3x3 (pad 1, no bias)."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(_weights(rng, (8, 4, 3, 3)), "w1"),
        numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "b1"),
        numpy_helper.from_array(_weights(rng, (8, 1, 3, 3)), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="dense", pads=[1] * 4),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="depthwise", pads=[1] * 4, group=8),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def _feeds(seed=1, n=4):
    rng = np.random.default_rng(seed)
    return [{"x": (rng.normal(size=(8, 4, 8, 8)) + 0.5).astype(np.float32)} for _ in range(n)]


@pytest.mark.parametrize("reduce_range", [False, True])
def test_the_rounded_weights_are_the_ones_onnxruntime_writes(tmp_path, reduce_range):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    src = _model(tmp_path / "m.onnx")
    feeds = iter(_feeds())

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    out = tmp_path / "q.onnx"
    quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=reduce_range)  # fmt: skip
    q = onnx.load(str(out))
    init = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    fp32 = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer}
    dq = {n.output[0]: n for n in q.graph.node if n.op_type == "DequantizeLinear"}
    checked = 0
    for conv in (n for n in q.graph.node if n.op_type == "Conv"):
        node = dq[conv.input[1]]
        w_int, scale = init[node.input[0]], init[node.input[1]]
        original = fp32[{"dense": "w1", "depthwise": "w2"}[conv.name]]
        theirs = w_int.astype(np.float32) * scale.reshape(-1, 1, 1, 1)
        ours = rounded(original, reduce_range=reduce_range)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7)
        checked += 1
    assert checked == 2


def test_the_shift_of_a_grouped_conv_is_its_weight_error_on_the_mean_input():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 2, 3, 3))
    wq = w + rng.normal(size=w.shape) * 0.01
    mean = rng.normal(size=6)  # 3 groups of 2 input channels
    want = [
        ((w - wq)[o].sum((1, 2)) * mean[(o // 2) * 2 : (o // 2) * 2 + 2]).sum() for o in range(6)
    ]
    np.testing.assert_allclose(shift(w, wq, mean, group=3), want, rtol=1e-12)


def _mean_error(model_path, quantized_path, feeds):
    ref, out = session(model_path), session(quantized_path)
    diff = [out.run(None, f)[0] - ref.run(None, f)[0] for f in feeds]
    return np.abs(np.mean(np.concatenate(diff), axis=(0, 2, 3)))


def test_correction_removes_most_of_the_mean_error_of_rounded_weights(tmp_path):
    """Weights rounded as int8 QDQ would (activations left in float, so only the weights' error
    is in the output): the corrected graph's mean output error per channel is far smaller."""
    src = _model(tmp_path / "m.onnx")
    model = onnx.load(str(src))

    def weights_only(graph_path, dst):
        m = onnx.load(str(graph_path))
        for w_init, _, _ in conv_weights(m).values():
            w = numpy_helper.to_array(w_init)
            w_init.CopyFrom(numpy_helper.from_array(rounded(w, reduce_range=False), w_init.name))
        onnx.save(m, str(dst))
        return dst

    plain = weights_only(src, tmp_path / "plain.onnx")
    fixed = tmp_path / "fixed.onnx"
    info = correct_graph(model, fixed, _feeds, exclude=(), reduce_range=False, means={})
    assert info["convs"] == 2 and info["max_shift"] > 0
    fixed = weights_only(fixed, fixed)
    held_out = _feeds(seed=7)  # not the data the means came from
    before, after = _mean_error(src, plain, held_out), _mean_error(src, fixed, held_out)
    assert after.mean() < 0.5 * before.mean(), (before, after)
    assert "depthwise.bias_corrected" in {t.name for t in onnx.load(str(fixed)).graph.initializer}
    assert len(input_means(model, _feeds(), ["dense", "depthwise"])["depthwise"]) == 8


def test_a_conv_kept_in_float_keeps_its_bias(tmp_path):
    src = _model(tmp_path / "m.onnx")
    out = tmp_path / "c.onnx"
    info = correct_graph(
        onnx.load(str(src)), out, _feeds, exclude=["dense"], reduce_range=False, means={}
    )
    assert info["convs"] == 1
    before = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer}
    after = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    np.testing.assert_array_equal(before["b1"], after["b1"])
    assert "depthwise.bias_corrected" in after


def test_a_graph_without_convs_is_left_as_it_is(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 8, 8])],
    )
    src = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    model = onnx.load(str(src))
    info = correct_graph(model, tmp_path / "out.onnx", _feeds, exclude=(), reduce_range=False,
                         means={})  # fmt: skip
    assert info == {"convs": 0, "max_shift": 0.0}

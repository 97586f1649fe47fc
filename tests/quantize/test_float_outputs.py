"""Static QDQ keeps the model's outputs float: 8-bit logits clip at the calibrated range (so
confident answers beyond it tie) and step by range / 255; the last op still runs on int8."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from packager.onnx_utils import session


def _output_quantizer(path) -> tuple[float, int] | None:
    """(scale, zero point) of the QuantizeLinear feeding the graph output, if there is one."""
    model = onnx.load(str(path))
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = producer[model.graph.output[0].name]
    if dq.op_type != "DequantizeLinear":
        return None
    return float(inits[dq.input[1]]), int(inits[dq.input[2]])


def test_logits_beyond_the_calibrated_range_are_not_clipped(cnn, tmp_path, run_quantize):
    common = dict(mode="static", calib=str(cnn["calib"]), speed_check=False)
    freed = run_quantize(cnn["model"], tmp_path / "a", **common)
    clipped = run_quantize(cnn["model"], tmp_path / "b", float_outputs=False, **common)
    assert freed.meta["quantization"]["float_outputs"] == 1
    assert clipped.meta["quantization"]["float_outputs"] == 0
    assert _output_quantizer(freed.file()) is None
    scale, zero = _output_quantizer(clipped.file())
    top = (255 - zero) * scale  # the largest logit the 8-bit output can hold
    x = np.random.default_rng(5).uniform(-4, 4, (16, 3, 32, 32)).astype(np.float32)  # 4x calib
    ref = session(cnn["model"]).run(None, {"x": x})[0]
    a = session(freed.file()).run(None, {"x": x})[0]
    b = session(clipped.file()).run(None, {"x": x})[0]
    assert ref.max() > top * 1.2  # the check means something: fp32 goes beyond the range
    assert b.max() <= top + 1e-5 < a.max()
    assert np.abs(a - ref).max() < np.abs(b - ref).max()
    model = onnx.load(str(freed.file()))
    assert [o.name for o in model.graph.output] == ["logits"]
    read = {i for n in model.graph.node for i in n.input}
    assert all(t.name in read for t in model.graph.initializer)  # no orphaned scale/zero point


def test_an_output_whose_float_tensor_is_read_elsewhere_keeps_its_pair(tmp_path):
    from onnx import TensorProto, helper

    from packager.quantize.graph import keep_outputs_float

    def q_pair(src, out):
        return [
            helper.make_node("QuantizeLinear", [src, "s", "z"], [f"{out}_q"]),
            helper.make_node("DequantizeLinear", [f"{out}_q", "s", "z"], [out]),
        ]

    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["n"])]
    nodes += q_pair("r", "y") + q_pair("n", "y2")
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [2]) for o in ("y", "y2")],
        [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.uint8(0), "z")],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert keep_outputs_float(path) == 1  # y's float tensor r also feeds Neg: its pair stays
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops == ["Relu", "Neg", "QuantizeLinear", "DequantizeLinear"]
    y, y2 = session(path).run(None, {"x": np.array([-1.0, 30.0], np.float32)})
    assert y.tolist() == [0.0, 25.5] and y2.tolist() == [-0.0, -30.0]

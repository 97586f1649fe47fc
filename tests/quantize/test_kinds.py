"""Conv-heavy models get static QDQ by default (and the CLI says why dynamic is a poor choice),
8-bit or 7-bit weights are chosen with a recorded reason, and the accuracy search ranks nodes by
their measured effect on the output."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from packager.cli import cli
from packager.quantize.effects import by_measured_effect, fake_quantized, weight_effects
from packager.quantize.kinds import conv_share, is_conv_heavy, weight_bits


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_a_cnn_is_conv_heavy_and_an_mlp_is_not(cnn, outlier):
    count, share = conv_share(cnn["model"])
    assert count == 2 and share > 0.5 and is_conv_heavy(cnn["model"])
    assert not is_conv_heavy(outlier["model"])


def test_auto_weight_bits_are_8_with_dot_product_instructions_else_7_and_say_why(monkeypatch):
    from packager.quantize import speed

    monkeypatch.setattr(speed, "cpu_features", lambda: {"int8_dot_product": False})
    seven, why = weight_bits("auto", True)
    assert seven is True and "no VNNI" in why
    monkeypatch.setattr(speed, "cpu_features", lambda: {"int8_dot_product": True})
    eight, why = weight_bits("auto", True)
    assert eight is False and "dot-product" in why
    assert weight_bits(True, True) == (True, "as configured (quantize.reduce_range)")
    assert weight_bits("auto", False)[0] is False


def test_the_cli_default_for_a_conv_model_is_static_and_needs_calibration(cnn, tmp_path):
    res = _invoke(
        "quantize", cnn["model"], "-o", tmp_path / "a.onnx", "--cache-dir", tmp_path / "c"
    )
    assert res.exit_code == 2
    assert "conv-heavy" in res.output and "--calib" in res.output
    res = _invoke(
        "quantize", cnn["model"], "-o", tmp_path / "s.onnx", "--calib", cnn["calib"],
        "--no-speed-check", "--cache-dir", tmp_path / "c",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "s.quantize.json").read_text())
    assert report["mode"] == "static" and report["per_channel"] is True
    assert report["weight_bits"] in (7, 8) and report["weight_bits_reason"]


def test_asking_for_dynamic_on_a_conv_model_says_why_not(cnn, tmp_path):
    res = _invoke(
        "quantize", cnn["model"], "-o", tmp_path / "d.onnx", "--mode", "dynamic",
        "--no-speed-check", "--cache-dir", tmp_path / "c",
    )  # fmt: skip
    assert res.exit_code == 0
    assert "ConvInteger" in res.output and "--mode static" in res.output


def test_the_measured_effect_ranks_the_outlier_layer_first(outlier):
    from packager.quantize.data import materialize, model_inputs, open_source

    inputs = model_inputs(outlier["model"])
    batches = materialize(open_source(outlier["eval"], inputs, batch=16, limit=64))
    effects = weight_effects(outlier["model"], batches, ["fc1", "spread", "head"], True, 8)
    assert max(effects, key=lambda n: effects[n][0]) == "spread" and effects["spread"][0] > 0.5
    assert effects["spread"][1] == 32 * 32  # its weight count
    ranking = by_measured_effect([("head", 0.9), ("fc1", 0.1), ("spread", 0.0)], effects)
    assert ranking[0] == ("spread", effects["spread"][0])
    # Per weight: a small node of the same effect goes first.
    toy = by_measured_effect(
        [("big", None), ("small", None)], {"big": (0.1, 1000), "small": (0.1, 10)}
    )
    assert [n for n, _ in toy] == ["small", "big"]


def test_fake_quantization_is_symmetric_per_channel():
    w = np.array([[1.0, -0.5, 0.25], [100.0, 3.0, -2.0]], np.float32)
    q = fake_quantized(w, 0, per_channel=True, bits=8)
    assert np.allclose(q[0], w[0], atol=1 / 127) and abs(q[1, 0] - 100.0) < 1e-4
    flat = fake_quantized(w, 0, per_channel=False, bits=8)
    assert flat[0, 2] == 0.0  # one scale for both rows: the small row rounds away


def test_a_conv_whose_relu_the_quantizer_dropped_is_still_measured(cnn, tmp_path):
    """QDQ drops the Relu after a Conv and gives the Conv its output name: sensitivity must
    compare that tensor, not rank the Conv last as unmeasurable."""
    from packager.quantize.data import materialize, model_inputs, open_source
    from packager.quantize.quantizer import Quantizer
    from packager.quantize.schemes import quantize_config
    from packager.quantize.search import candidates_of, node_sensitivity

    inputs = model_inputs(cnn["model"])
    cfg = quantize_config(mode="static")
    qz = Quantizer(
        cnn["model"], cfg, tmp_path, open_source(cnn["calib"], inputs, batch=16, limit=64)
    )
    qz.write(tmp_path / "q.onnx")
    batches = materialize(open_source(cnn["eval"], inputs, batch=16, limit=32))
    convs = candidates_of(qz.graph, {"Conv"}, [])
    ranking = node_sensitivity(qz.graph, tmp_path / "q.onnx", batches, convs)
    assert len(ranking) == 2 and all(score is not None for _, score in ranking)


def test_batch_norm_is_folded_and_relu_folds_into_the_qdq_pairs(cnn, tmp_path):
    import onnx

    from packager.quantize.data import model_inputs, open_source
    from packager.quantize.quantizer import Quantizer
    from packager.quantize.schemes import quantize_config

    assert "BatchNormalization" not in {n.op_type for n in onnx.load(cnn["model"]).graph.node}
    inputs = model_inputs(cnn["model"])
    calib = open_source(cnn["calib"], inputs, batch=16, limit=64)
    qz = Quantizer(cnn["model"], quantize_config(mode="static"), tmp_path, calib)
    qz.write(tmp_path / "q.onnx")
    ops = {n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert "Relu" not in ops and "BatchNormalization" not in ops and "QuantizeLinear" in ops


def _convs_with_a_wide_head(path):
    """Two convolutions doing ~98% of the multiply-accumulates but holding ~5% of the weights
    (the digits teacher's shape of problem: weights would call it an MLP)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2000),
    )  # fmt: skip
    torch.onnx.export(
        net.eval(), (torch.randn(1, 3, 32, 32),), str(path), input_names=["x"],
        output_names=["logits"], dynamic_axes={"x": {0: "batch"}}, opset_version=17, dynamo=False,
    )  # fmt: skip
    return path


def test_auto_decides_by_the_share_of_multiply_accumulates_not_of_weights(tmp_path):
    model = _convs_with_a_wide_head(tmp_path / "m.onnx")
    count, share = conv_share(model)
    assert count == 2 and share > 0.95 and is_conv_heavy(model)
    res = _invoke("quantize", model, "-o", tmp_path / "q.onnx", "--cache-dir", tmp_path / "c")
    assert res.exit_code == 2
    assert "2 Conv doing 98% of the multiply-accumulates" in res.output
    assert "give --calib DATA" in res.output


def _slow_quantized(monkeypatch):
    """The speed check's timings as measured on a CPU where the quantized model is 5x slower
    (timing is never asserted in tests: the verdict's consequences are)."""
    from packager.quantize import speed

    monkeypatch.setattr(
        speed, "latency", lambda model, *a, **k: 1.0 if "/import_model/" in str(model) else 5.0
    )


def test_a_model_measured_slower_with_a_faster_scheme_known_exits_4_naming_it(
    cnn, tmp_path, monkeypatch
):
    _slow_quantized(monkeypatch)
    out = tmp_path / "d.onnx"
    res = _invoke("quantize", cnn["model"], "-o", out, "--mode", "dynamic", "--cache-dir",
                  tmp_path / "c")  # fmt: skip
    assert res.exit_code == 4 and out.is_file()  # what was asked for is written, not shipped as ok
    assert "the dynamic model is 5.00x slower than fp32 on this host" in res.output
    assert f"static runs faster: edgepack quantize {cnn['model']} -o {out} --mode static" in (
        res.output.replace("\n", " ")
    )


def test_auto_tries_the_faster_scheme_when_its_data_is_there(cnn, tmp_path, monkeypatch):
    _slow_quantized(monkeypatch)
    from packager.quantize import kinds

    monkeypatch.setattr(kinds, "CONV_HEAVY", 2.0)  # as if its convs did a minority of the MACs
    res = _invoke("quantize", cnn["model"], "-o", tmp_path / "a.onnx", "--calib", cnn["calib"],
                  "--cache-dir", tmp_path / "c")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "mode: static (dynamic ran 5.00x slower than fp32 here: dynamic quantization of" in (
        res.output.replace("\n", " ")
    )
    assert json.loads((tmp_path / "a.quantize.json").read_text())["mode"] == "static"

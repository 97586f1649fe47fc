"""quantize stage: onnxruntime dynamic and static INT8 with selectable calibration."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_recipe

from packager.onnx_utils import session, summary
from packager.pipeline import build, run
from packager.plans import build_plan
from packager.progress import SilentReporter


def _quantize(cache_dir, **quantize):
    recipe = tiny_recipe(quantize=quantize)
    steps = [
        s
        for s in build_plan(recipe)
        if s.name in ("data", "teacher", "distill", "export", "quantize")
    ]
    return run(steps, cache_dir=cache_dir, reporter=SilentReporter()).artifact("quantize")


def test_static_qdq_per_channel_is_the_default(tiny_build):
    art = tiny_build.artifact("quantize")
    ops = summary(art.file())["ops"]
    assert ops.get("QuantizeLinear", 0) > 0 and ops.get("DequantizeLinear", 0) > 0
    assert (
        art.meta["mode"] == "static"
        and art.meta["format"] == "QDQ"
        and art.meta["calibration"] == "minmax"
    )
    assert art.meta["calibration_examples"] == 64


@pytest.mark.parametrize("calibration", ["entropy", "percentile"])
def test_other_calibration_methods_give_a_working_model(cache_dir, calibration):
    art = _quantize(cache_dir, calibration=calibration)
    out = session(art.file()).run(None, {"input": np.zeros((2, 1, 8, 8), np.float32)})[0]
    assert out.shape == (2, 10) and np.isfinite(out).all()
    assert art.meta["calibration"] == calibration


def test_dynamic_int8_uses_integer_matmuls_and_shrinks_weights(cache_dir):
    art = _quantize(cache_dir, mode="dynamic")
    ops = summary(art.file())["ops"]
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops
    assert art.meta["format"] == "QOperator" and art.meta["calibration"] is None
    assert art.meta["size_bytes"] < art.meta["fp32_size_bytes"]


CNN = {"student": {"arch": "cnn", "channels": [4, 8], "hidden": 16}}


@pytest.mark.parametrize(
    ("mode", "precision", "op"),
    [("dynamic", "int8", "ConvInteger"), ("fp16", "fp16", "Cast"), ("int4", "int4", "MatMulNBits")],
)
def test_cnn_student_in_every_mode_loads_and_records_size_metric_and_latency(
    cache_dir, mode, precision, op
):
    recipe = tiny_recipe(distill=CNN, quantize={"mode": mode, "speed_runs": 5})
    steps = [
        s
        for s in build_plan(recipe)
        if s.name in ("data", "teacher", "distill", "export", "quantize")
    ]
    art = run(steps, cache_dir=cache_dir, reporter=SilentReporter()).artifact("quantize")
    out = session(art.file()).run(None, {"input": np.zeros((2, 1, 8, 8), np.float32)})[0]
    assert out.shape == (2, 10) and np.isfinite(out).all()
    assert op in summary(art.file())["ops"]
    assert art.meta["precision"] == precision and art.meta["size_bytes"] > 0
    metric = art.meta["metric"]
    assert metric["name"] == "accuracy" and "validation split" in metric["dataset"]
    assert metric["fp32"] > 0.3 and abs(metric["drop"]) < 0.2
    speed = art.meta["latency"]
    assert speed["p50_ms"] > 0 and speed["fp32_p50_ms"] > 0
    if mode == "dynamic" and speed["warning"]:  # ConvInteger is named when it is the cause
        assert "dynamic quantization of convolutions" in speed["warning"]


def test_package_manifest_records_the_quantization_mode_and_host_cpu(tiny_build):
    import json
    import zipfile

    manifest = json.loads(zipfile.ZipFile(tiny_build.package_path).read("manifest.json"))
    q = manifest["quantization"]
    assert (q["mode"], q["precision"], q["format"], q["calibration"]) == (
        "static",
        "int8",
        "QDQ",
        "minmax",
    )
    assert q["calibration_examples"] == 64 and q["per_channel"] is True
    assert q["metric"]["name"] == "accuracy" and q["speed"]["threads"] == 1
    assert {"avx2", "avx512", "vnni", "amx", "neon", "dotprod"} <= set(q["host_cpu"])


def test_package_of_an_int4_build_says_int4(cache_dir, tmp_path):
    import json
    import zipfile

    recipe = tiny_recipe(
        quantize={"mode": "int4", "speed_check": False},
        bench={"enabled": False},
        package={"out_dir": str(tmp_path)},
    )
    result = build(recipe, cache_dir=cache_dir, reporter=SilentReporter())
    zf = zipfile.ZipFile(result.package_path)
    assert json.loads(zf.read("manifest.json"))["quantization"]["mode"] == "int4"
    assert json.loads(zf.read("report.json"))["quantization"].startswith("int4 INT4, MatMulNBits")

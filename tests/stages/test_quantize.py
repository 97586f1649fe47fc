"""quantize stage: onnxruntime dynamic and static INT8 with selectable calibration."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_recipe

from packager.onnx_utils import session, summary
from packager.pipeline import plan, run
from packager.progress import SilentReporter


def _quantize(cache_dir, **quantize):
    recipe = tiny_recipe(quantize=quantize)
    steps = [
        s for s in plan(recipe) if s.name in ("data", "teacher", "distill", "export", "quantize")
    ]
    return run(recipe, cache_dir=cache_dir, steps=steps, reporter=SilentReporter()).artifact(
        "quantize"
    )


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

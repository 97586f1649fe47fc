"""export stage: ONNX with a dynamic batch axis, checked against torch."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_recipe

from packager.errors import CheckFailed
from packager.onnx_utils import session
from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def _export(cache_dir, student=None, **export):
    recipe = tiny_recipe(export=export, **({"distill": {"student": student}} if student else {}))
    steps = [s for s in build_plan(recipe) if s.name in ("data", "teacher", "distill", "export")]
    return run(steps, cache_dir=cache_dir, reporter=SilentReporter()).artifact("export")


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_exported_model_takes_any_batch(tiny_build, batch):
    art = tiny_build.artifact("export")
    assert art.meta["inputs"][0]["shape"] == ["batch", 1, 8, 8]
    x = np.random.default_rng(0).random((batch, 1, 8, 8), dtype=np.float32)
    assert session(art.file()).run(None, {"input": x})[0].shape == (batch, 10)


def test_parity_is_recorded_within_tolerance(tiny_build):
    art = tiny_build.artifact("export")
    assert art.meta["parity_max_abs_diff"] <= 1e-4 and art.meta["parity_examples"] == 360


def test_parity_over_tolerance_fails_the_stage_with_the_numbers(cache_dir):
    # A conv student: onnxruntime's and torch's conv kernels round differently, so |diff| > 0
    # (the default mlp student's two matmuls can agree with torch to the last bit).
    with pytest.raises(
        CheckFailed, match=r"^export: max \|onnx - torch\| = .* exceeds export.atol = 1e-12"
    ):
        _export(cache_dir, atol=1e-12, student={"arch": "cnn", "channels": [4, 8], "hidden": 16})


def test_dynamo_exporter_is_selectable(cache_dir):
    art = _export(cache_dir, dynamo=True)
    assert art.meta["parity_max_abs_diff"] <= 1e-4
    x = np.zeros((3, 1, 8, 8), np.float32)
    assert session(art.file()).run(None, {art.meta["inputs"][0]["name"]: x})[0].shape == (3, 10)

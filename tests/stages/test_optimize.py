"""optimize stage: onnxslim and onnxruntime offline optimization, node counts before and after."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_recipe, tiny_transformer_onnx

from packager.config import ModelFileConfig, OptimizeConfig
from packager.onnx_utils import session
from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter
from packager.stage import Step


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_transformer_onnx(tmp_path_factory.mktemp("opt") / "t.onnx")


def _optimize(model, cache, **cfg):
    steps = [
        Step("model", ModelFileConfig.for_file(model)),
        Step("optimize", OptimizeConfig(**cfg), ("model",)),
    ]
    res = run(steps, cache_dir=cache, reporter=SilentReporter())
    return res.artifact("optimize")


@pytest.mark.parametrize(
    ("cfg", "names"),
    [
        ({"slim": True}, ["input", "onnxslim"]),
        ({"level": "basic"}, ["input", "onnxruntime-basic"]),
        ({"level": "extended"}, ["input", "onnxruntime-extended"]),
        ({"level": "all", "slim": True}, ["input", "onnxslim", "onnxruntime-all"]),
    ],
)
def test_each_optimizer_records_node_counts_and_keeps_outputs(model, tmp_path, cfg, names):
    art = _optimize(model, tmp_path, **cfg)
    assert [s["step"] for s in art.meta["steps"]] == names
    assert art.meta["nodes_before"] == art.meta["steps"][0]["nodes"]
    assert art.meta["nodes_after"] == art.meta["steps"][-1]["nodes"] < art.meta["nodes_before"]
    feeds = {
        "input_ids": np.arange(16).reshape(2, 8) % 64,
        "attention_mask": np.ones((2, 8), np.int64),
    }
    want = session(model).run(None, feeds)[0]
    np.testing.assert_allclose(session(art.file()).run(None, feeds)[0], want, atol=1e-4)


def test_extended_writes_onnxruntime_fused_ops(model, tmp_path):
    ops = _optimize(model, tmp_path, level="extended").meta["ops"]
    assert any(op in ops for op in ("FusedMatMul", "SkipLayerNormalization", "BiasGelu", "Gelu"))


def test_optimize_is_off_by_default_and_sits_between_export_and_quantize():
    assert "optimize" not in [s.name for s in build_plan(tiny_recipe())]
    steps = {s.name: s for s in build_plan(tiny_recipe(optimize={"level": "basic", "slim": True}))}
    assert steps["optimize"].roles == {"model": "export"}
    # sizes, the metric and the speed check stay relative to the export (the unoptimized model)
    assert steps["quantize"].roles == {"model": "optimize", "data": "data", "original": "export"}
    assert not OptimizeConfig().enabled and OptimizeConfig(slim=True).enabled

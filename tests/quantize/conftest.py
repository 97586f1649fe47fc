"""Tiny models and data files for the quantize tests, built once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def transformer(tmp_path_factory) -> dict[str, Path]:
    """The tiny transformer and a token-id .npz (no labels) to calibrate and evaluate on."""
    from tiny_models import tiny_transformer_onnx

    root = tmp_path_factory.mktemp("transformer")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 64, (48, 8))
    mask = np.ones_like(ids)
    mask[:12, 6:] = 0
    np.savez(root / "tokens.npz", input_ids=ids, attention_mask=mask)
    return {"model": tiny_transformer_onnx(root / "t.onnx"), "data": root / "tokens.npz"}


@pytest.fixture(scope="session")
def outlier(tmp_path_factory) -> dict[str, Path]:
    """The outlier MLP, calibration inputs (.npy) and labelled evaluation data (.npz)."""
    import onnxruntime as ort
    from tiny_models import outlier_mlp_onnx

    root = tmp_path_factory.mktemp("outlier")
    model = outlier_mlp_onnx(root / "outlier.onnx")
    x = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"x": x})[0].argmax(1)  # fp32 accuracy is 1.0 by construction
    np.save(root / "calib.npy", x[:128])
    np.savez(root / "eval.npz", x=x, y=y)
    return {"model": model, "calib": root / "calib.npy", "eval": root / "eval.npz"}


def _run_quantize(model: Path, cache_dir: Path, **cfg):
    """The quantize artifact for `model`, through the single-stage recipe and the runner."""
    from packager.pipeline import run
    from packager.plans import quantize_plan
    from packager.progress import SilentReporter
    from packager.quantize.schemes import quantize_config

    steps = quantize_plan(model, quantize_config(**cfg))
    result = run(steps, cache_dir=cache_dir, reporter=SilentReporter())
    return result.artifact("quantize")


@pytest.fixture
def run_quantize():
    """`run_quantize(model, cache_dir, **quantize_config fields)` -> the quantize artifact."""
    return _run_quantize


@pytest.fixture(scope="session")
def cnn(tmp_path_factory) -> dict[str, Path]:
    """A conv-heavy model (tests/tiny_models.py's colour teacher: Conv-BN-ReLU x2, global
    pooling, a head) exported to ONNX, with image-like calibration and evaluation data."""
    import torch
    from tiny_models import make_colour_teacher

    root = tmp_path_factory.mktemp("cnn")
    model = make_colour_teacher(classes=6, width=16)
    torch.onnx.export(
        model, (torch.randn(1, 3, 32, 32),), str(root / "cnn.onnx"), input_names=["x"],
        output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    x = np.random.default_rng(2).uniform(-1, 1, (96, 3, 32, 32)).astype(np.float32)
    np.save(root / "calib.npy", x[:64])
    np.savez(root / "eval.npz", x=x[64:])
    return {"model": root / "cnn.onnx", "calib": root / "calib.npy", "eval": root / "eval.npz"}


@pytest.fixture
def without_vnni(monkeypatch):
    """This host as an x86 CPU without int8 dot-product instructions (the 7-bit default)."""
    from packager.quantize import speed

    real = speed.cpu_features
    monkeypatch.setattr(speed, "cpu_features", lambda isa=None: {**real(isa), "vnni": False,
                        "amx": False, "dotprod": False, "int8_dot_product": False})  # fmt: skip

"""quantize: onnxruntime INT8, dynamic or static (QDQ, calibrated on the training split)."""

from __future__ import annotations

import numpy as np

from packager.errors import StageError
from packager.recipe import QuantizeConfig
from packager.stage import Artifact, Output, StageContext, register_stage
from packager.stages.data import splits_of

CALIBRATION = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


class _Reader:
    """Feeds calibration batches to onnxruntime's calibrator one at a time."""

    def __init__(self, name: str, x: np.ndarray, batch: int = 32):
        self._batches = iter([{name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self._batches, None)


def _qtype(name: str):
    from onnxruntime.quantization import QuantType

    return {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[name]


def quantize_file(src, dst, cfg: QuantizeConfig, calib: np.ndarray | None, workdir) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if cfg.mode == "dynamic":
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=_qtype(cfg.weight_type),
            per_channel=cfg.per_channel,
            reduce_range=cfg.reduce_range,
        )
        return
    pre = workdir / "preprocessed.onnx"
    # Symbolic shape inference chokes on some transformer graphs; ONNX shape inference suffices.
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    import onnxruntime as ort

    name = ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    quantize_static(
        str(pre),
        str(dst),
        _Reader(name, calib),
        quant_format=QuantFormat.QDQ,
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        activation_type=_qtype(cfg.activation_type),
        weight_type=_qtype(cfg.weight_type),
        calibrate_method=getattr(CalibrationMethod, CALIBRATION[cfg.calibration]),
    )
    pre.unlink()


@register_stage(QuantizeConfig)
def quantize(model_art: Artifact, cfg: QuantizeConfig, ctx: StageContext) -> Output:
    from packager.onnx_utils import io_spec, summary

    splits = splits_of(ctx.inputs["data"])
    calib = splits.model_input("train", limit=cfg.calib_samples) if cfg.mode == "static" else None
    out = ctx.workdir / "model.onnx"
    try:
        quantize_file(model_art.file(), out, cfg, calib, ctx.workdir)
    except Exception as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StageError(ctx.step, f"onnxruntime {cfg.mode} quantization failed: {msg}") from err
    fp32_size = model_art.file().stat().st_size
    size = out.stat().st_size
    ops = summary(out)["ops"]
    ctx.log(
        f"{cfg.mode} INT8 ({cfg.calibration if calib is not None else 'no calibration'}): "
        f"{fp32_size / 1024:.1f} KiB -> {size / 1024:.1f} KiB"
    )
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "precision": "int8",
            "mode": cfg.mode,
            "format": "QDQ" if cfg.mode == "static" else "QOperator",
            "calibration": cfg.calibration if calib is not None else None,
            "calibration_examples": 0 if calib is None else len(calib),
            "size_bytes": size,
            "fp32_size_bytes": fp32_size,
            "params": model_art.meta.get("params"),
            "ops": ops,
            **io_spec(out),
        },
    )

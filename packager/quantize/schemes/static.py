"""Static int8: weights and activations, calibrated once on real inputs (onnxruntime's
quantize_static), as QuantizeLinear/DequantizeLinear pairs (QDQ) or QLinear* ops. The scheme
for convolutions (CNNs): per-channel int8 weights, bias correction, float outputs."""

from __future__ import annotations

import contextlib
import inspect
import io
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from packager.config import QuantizeConfig
from packager.errors import RecipeError
from packager.quantize.registry import Scheme, register

CALIBRATION = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# Histogram settings onnxruntime's create_calibrator takes but quantize_static does not pass on.
# Its entropy defaults (128 bins = 128 quantized bins) leave one candidate threshold, the full
# range, i.e. MinMax in other words (same bytes); TensorRT's 2048 / 128 give it a real search.
CALIBRATOR_OPTIONS = {
    "minmax": {},
    "entropy": {"num_bins": 2048, "num_quantized_bins": 128},
    "percentile": {"num_bins": 2048, "percentile": 99.999},
}
# Per-channel Q/DQ need opset 13 (axis); onnxruntime's int8 quantizers want 11 at least (they
# fuse DynamicQuantizeLinear and refuse to work below 10).
PER_CHANNEL_OPSET = 13
INT8_OPSET = 11


class StaticConfig(QuantizeConfig):
    """mode: static: int8 weights and activations, activation ranges calibrated on real data."""

    # int8 tables need a Gather the static quantizer leaves alone; int4 blocks are a pass of
    # their own after it.
    embedding_choices: ClassVar[tuple[str, ...]] = ("auto", "fp32", "int4")

    mode: Literal["static"] = "static"
    format: Literal["qdq", "qoperator"] = Field(
        "qdq", description="QuantizeLinear/DequantizeLinear pairs or QLinear* ops"
    )
    per_channel: bool = Field(
        True,
        description="one int8 scale per output channel of each weight (per tensor: one)",
        json_schema_extra={"cli": "--per-channel/--per-tensor"},
    )
    calibration: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="how activation ranges are chosen from the calibration data"
    )
    calib: str | None = Field(
        None,
        description="calibration data (.npz/.npy/.jsonl/.txt); none: the recipe's training split",
    )
    calib_samples: int = Field(256, ge=1, description="cap on examples read for calibration")
    calib_batch: int = Field(32, ge=1, description="examples per calibration batch (memory bound)")
    activation_type: Literal["uint8", "int8"] = Field("uint8", description="activation type")
    weight_type: Literal["int8", "uint8"] = Field("int8", description="weight type")
    # auto (packager.quantize.kinds.weight_bits, the reason recorded): 8-bit where the CPU has
    # int8 dot-product instructions (VNNI, AMX, ARM dotprod: exact kernels); 7-bit on x86
    # without VNNI, whose u8 x s8 kernels saturate full-range weights, so a package built there
    # would record outputs an ARM device or wasm does not reproduce (digits logits off by 1.47).
    reduce_range: bool | Literal["auto"] = Field(
        "auto",
        description="7-bit weights (true: exact on x86 without VNNI, arm64 and wasm), 8-bit "
        "(false), or auto: 8-bit where the CPU has int8 dot-product instructions, else 7-bit",
        json_schema_extra={"cli": "--reduce-range/--full-range"},
    )
    bias_correction: bool = Field(
        True,
        description="per-channel int8 weights: add to each quantized Conv's bias the mean "
        "its rounded weights take from its output on the calibration data (NNCF's fast bias "
        "correction; packager.quantize.bias)",
    )
    float_outputs: bool = Field(
        True,
        description="QDQ: the model's outputs stay float (no QuantizeLinear/"
        "DequantizeLinear after the last op): 8-bit logits clip at the calibrated range and tie",
    )


def _qtype(name: str):
    from onnxruntime.quantization import QuantType

    return {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[name]


def _ops(cfg: StaticConfig) -> set[str]:
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return set(QDQRegistry) | set(QLinearOpsRegistry)


def _calibrate(q, cfg: StaticConfig) -> None:
    """Tensor ranges by the configured method, computed once with onnxruntime's own
    calibrator (and the histogram settings quantize_static cannot pass), saved as the
    calibration cache every quantize_static call then reads."""
    import tempfile

    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    from packager.quantize.data import CalibrationReader

    reader = CalibrationReader(q.calib)
    with tempfile.TemporaryDirectory(dir=q.workdir) as tmp:
        calibrator = create_calibrator(
            q.graph,
            list(_ops(cfg)),
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=getattr(CalibrationMethod, CALIBRATION[cfg.calibration]),
            extra_options=CALIBRATOR_OPTIONS[cfg.calibration],
        )
        calibrator.collect_data(reader)
        ranges = calibrator.compute_data()
    save_tensors_data(ranges, q.calib_cache)
    q.calibration_examples = reader.count


def _quantize(q, dst: Path, exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static
    from onnxruntime.quantization.calibrate import load_tensors_data

    cfg: StaticConfig = q.cfg
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise RecipeError(
            f"this onnxruntime ({_ort_version()}) cannot quantize from precomputed ranges, "
            "so calibration entropy/percentile would silently be minmax: upgrade "
            "onnxruntime (pip install -U onnxruntime)"
        )
    if not q.calib_cache.exists():
        # Its histogram calibrators print their settings; the CLI's stdout stays ours.
        with contextlib.redirect_stdout(io.StringIO()):
            _calibrate(q, cfg)
    # What onnxruntime will use: the method recorded in the ranges it reads (it refuses a
    # cache whose method differs from calibrate_method).
    applied = load_tensors_data(q.calib_cache).calibration_method
    q.calibration_applied = {v: k for k, v in CALIBRATION.items()}[applied.name]
    src = q.graph
    if cfg.bias_correction and cfg.weight_type == "int8" and cfg.per_channel:
        from packager.quantize.bias import correct_graph

        src = q.workdir / "bias_corrected.onnx"
        q.bias_correction = correct_graph(
            q.model, src, lambda: (b[0] for b in q.calib.batches()), exclude=exclude,
            reduce_range=q.reduce_range, means=q.bias_means,
        )  # fmt: skip
    quantize_static(
        str(src),
        str(dst),
        None,
        quant_format=QuantFormat.QDQ if cfg.format == "qdq" else QuantFormat.QOperator,
        per_channel=cfg.per_channel,
        reduce_range=q.reduce_range,
        activation_type=_qtype(cfg.activation_type),
        weight_type=_qtype(cfg.weight_type),
        nodes_to_exclude=exclude,
        calibrate_method=getattr(CalibrationMethod, CALIBRATION[cfg.calibration]),
        calibration_cache_path=str(q.calib_cache),
    )


def _float_outputs(cfg: StaticConfig, q, dst: Path) -> None:
    from packager.quantize.graph import keep_outputs_float

    if cfg.format == "qdq" and cfg.float_outputs:
        q.float_outputs = keep_outputs_float(dst)


def _settings(cfg: StaticConfig, q) -> dict[str, Any]:
    return {
        "activation_type": cfg.activation_type,
        "calibration": q.calibration_applied,
        "calibration_options": CALIBRATOR_OPTIONS[cfg.calibration],
        "calibration_examples": q.calibration_examples,
        "bias_correction": q.bias_correction,  # convs shifted, largest shift
        "float_outputs": q.float_outputs,
    }


def _causes(cfg: StaticConfig, ran_ops: Counter, cpu: dict[str, Any]) -> list[str]:
    qdq = ran_ops.get("QuantizeLinear", 0) + ran_ops.get("DequantizeLinear", 0)
    if not qdq:
        return []
    return [
        f"QDQ kept as fake-quant: {qdq} QuantizeLinear/DequantizeLinear node(s) survive "
        "onnxruntime's fusions, so those tensors run float math plus conversions; exclude "
        "the ops around them or try format=qoperator"
    ]


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


SCHEME = register(
    Scheme(
        config=StaticConfig,
        precision="int8",
        summary="int8 weights and activations, calibrated (needs calibration data)",
        quantize=_quantize,
        modalities=("array", "image", "text"),
        format=lambda cfg: "QDQ" if cfg.format == "qdq" else "QOperator",
        ops=_ops,
        opset=lambda cfg: PER_CHANNEL_OPSET if cfg.per_channel else INT8_OPSET,
        causes=_causes,
        op_classes={
            "QLinearConv": "conv_int8",
            "NhwcQLinearConv": "conv_int8",
            "QLinearMatMul": "gemm_int8",
            "QGemm": "gemm_int8",
        },
        settings=_settings,
        finish=_float_outputs,
        preprocess=True,
        int8_weights=True,
        calibrates=True,
        searched={"array": 0, "text": 1},
    )
)

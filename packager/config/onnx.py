"""The ONNX half of a build: `export:`, `optimize:` and `quantize:` sections."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from packager.config.base import Config


class ExportConfig(Config):
    opset: int = Field(17, ge=13, le=21)
    dynamo: bool = Field(False, description="torch.onnx.export(dynamo=...), chosen explicitly")
    atol: float = Field(1e-4, gt=0, description="max |onnx - torch| on the test split")
    exporter: Literal["auto", "optimum", "torch"] = Field(
        "auto",
        description="transformers models: optimum-onnx's main_export, torch.onnx.export, or "
        "auto (optimum, falling back to torch when it does not support the architecture)",
    )


class OptimizeConfig(Config):
    """Offline graph optimization before quantization; off by default (see README)."""

    level: Literal["none", "basic", "extended", "all"] = Field(
        "none",
        description="onnxruntime offline optimization saved to file; extended/all write "
        "onnxruntime-only fused ops (all: also CPU-specific layouts), so they tie the model "
        "to onnxruntime on this kind of CPU",
    )
    slim: bool = Field(False, description="run onnxslim (constant folding, dead nodes, fusions)")

    @property
    def enabled(self) -> bool:
        return self.level != "none" or self.slim


class QuantizeConfig(Config):
    path_fields: ClassVar[tuple[str, ...]] = ("calib", "eval", "tokenizer", "feeds")

    mode: Literal["static", "dynamic", "fp16", "int4", "none"] = Field(
        "static",
        description="static: int8 calibrated; dynamic: int8 weights, activations at run time; "
        "fp16: half-precision floats; int4: 4-bit weight-only MatMuls (MatMulNBits)",
    )
    format: Literal["qdq", "qoperator"] = Field(
        "qdq", description="static only: QuantizeLinear/DequantizeLinear pairs or QLinear* ops"
    )
    per_channel: bool = True
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calib: str | None = Field(
        None,
        description="calibration data (.npz/.npy/.jsonl/.txt); none: the recipe's training split",
    )
    calib_samples: int = Field(256, ge=1, description="cap on examples read for calibration")
    calib_batch: int = Field(32, ge=1, description="examples per calibration batch (memory bound)")
    tokenizer: str | None = Field(None, description="tokenizer.json or folder, for text data")
    max_length: int = Field(128, ge=1, description="token cap per text example")
    activation_type: Literal["uint8", "int8"] = "uint8"
    weight_type: Literal["int8", "uint8"] = "int8"
    # On by default: x86 CPUs without VNNI saturate full-range u8 x s8 products, so a package
    # built there records outputs an ARM device, wasm or a VNNI CPU does not reproduce (measured:
    # digits logits off by 1.47). 7-bit weights make every kernel exact for ~0.3 points.
    reduce_range: bool = Field(True, description="7-bit weights: exact on CPUs without VNNI")
    exclude_nodes: tuple[str, ...] = Field((), description="node names kept in float")
    exclude_patterns: tuple[str, ...] = Field(
        (), description="glob patterns over node names kept in float, e.g. '*attention*'"
    )
    exclude_op_types: tuple[str, ...] = Field((), description="op types kept in float, e.g. Conv")
    block_size: int = Field(32, ge=16, le=1024, description="int4: weights per scale block")
    int4_symmetric: bool = Field(True, description="int4: symmetric blocks (no zero points)")
    keep_io_types: bool = Field(True, description="fp16: keep float32 model inputs and outputs")
    eval: str | None = Field(
        None, description="evaluation data (same formats); none: the recipe's validation split"
    )
    eval_samples: int = Field(1000, ge=1, description="cap on evaluation examples")
    metric: Literal["accuracy", "top5", "agreement", "sequence", "cosine", "mse", "iou"] = Field(
        "accuracy",
        description="classifiers: accuracy / top5 (vs labels), agreement (top-1 vs fp32, over "
        "class_axis); recognizers: sequence (the whole per-timestep top-1 path matches fp32); "
        "embeddings and maps: cosine, mse; detection/segmentation maps: iou at iou_threshold",
    )
    class_axis: int | None = Field(
        None,
        description="the class axis of the first output (accuracy, top5, agreement, sequence); "
        "none: axis 1 of 4-D+ outputs (N, C, H, W maps), else the last axis",
    )
    iou_threshold: float = Field(
        0.5, description="iou: output values above it are foreground (0 for logit maps)"
    )
    max_drop: float | None = Field(
        None,
        ge=0,
        description="accuracy budget: if fp32 metric - quantized metric exceeds it, exclude the "
        "most sensitive nodes one by one until it holds",
    )
    max_trials: int = Field(
        16,
        ge=1,
        description="cap on accuracy-search trials; with more candidate nodes than trials, "
        "each trial keeps geometrically more in float, the last one all of them",
    )
    speed_check: bool = Field(True, description="benchmark fp32 and quantized side by side")
    dims: dict[str, int] = Field(
        default_factory=dict,
        description="values of named symbolic input dims for the speed check and generated "
        "inputs when no data gives the shapes, e.g. {height: 320, width: 320}",
    )
    feeds: str | None = Field(
        None,
        description="an .npz of real inputs (one array per input name) for the speed check "
        "when neither eval nor calib data is given",
    )
    speed_threads: int = Field(1, ge=1, description="threads of the speed check")
    speed_runs: int = Field(50, ge=1, description="timed runs per model in the speed check")

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("block_size must be a power of two (16, 32, 64, 128, ...)")
        return v

    def input_paths(self) -> dict[str, str]:
        paths = {
            "calib": self.calib,
            "eval": self.eval,
            "tokenizer": self.tokenizer,
            "feeds": self.feeds,
        }
        return {k: v for k, v in paths.items() if v}

"""The ONNX half of a build: `export:`, `optimize:` and `quantize:` sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from packager.config.base import Config


class ExportConfig(Config):
    opset: int = Field(17, ge=13, le=21)
    dynamo: bool = Field(False, description="torch.onnx.export(dynamo=...), chosen explicitly")
    atol: float = Field(1e-4, gt=0, description="max |onnx - torch| on the test split")
    exporter: Literal["auto", "genai", "optimum", "torch"] = Field(
        "auto",
        description="transformers models: onnxruntime-genai's model builder (causal LMs only: "
        "fused attention, a shared KV buffer), optimum-onnx's main_export, torch.onnx.export, "
        "or auto (causal LMs: the builder where it is installed and knows the architecture; "
        "then optimum, falling back to torch when it does not support the architecture)",
    )

    def input_paths(self) -> dict[str, str]:
        from packager.config.lm import genai_builder_stamps

        return genai_builder_stamps() if self.exporter in ("auto", "genai") else {}


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
    # auto (packager.quantize.kinds.weight_bits, the reason recorded): 8-bit where the CPU has
    # int8 dot-product instructions (VNNI, AMX, ARM dotprod: exact kernels); 7-bit on x86
    # without VNNI, whose u8 x s8 kernels saturate full-range weights, so a package built there
    # would record outputs an ARM device or wasm does not reproduce (digits logits off by 1.47).
    reduce_range: bool | Literal["auto"] = Field(
        "auto",
        description="7-bit weights (true: exact on x86 without VNNI, arm64 and wasm), 8-bit "
        "(false), or auto: 8-bit where the CPU has int8 dot-product instructions, else 7-bit",
    )
    bias_correction: bool = Field(
        True,
        description="static, per-channel int8 weights: add to each quantized Conv's bias the mean "
        "its rounded weights take from its output on the calibration data (NNCF's fast bias "
        "correction; packager.quantize.bias)",
    )
    float_outputs: bool = Field(
        True,
        description="static QDQ: the model's outputs stay float (no QuantizeLinear/"
        "DequantizeLinear after the last op): 8-bit logits clip at the calibrated range and tie",
    )
    exclude_nodes: tuple[str, ...] = Field((), description="node names kept in float")
    exclude_patterns: tuple[str, ...] = Field(
        (), description="glob patterns over node names kept in float, e.g. '*attention*'"
    )
    exclude_op_types: tuple[str, ...] = Field((), description="op types kept in float, e.g. Conv")
    block_size: int = Field(32, ge=16, le=1024, description="int4: weights per scale block")
    int4_symmetric: bool = Field(True, description="int4: symmetric blocks (no zero points)")
    int4_accuracy_level: Literal[0, 1, 2, 3, 4] = Field(
        0,
        description="int4: MatMulNBits compute type (0 as onnxruntime defaults: fp32; 4: int8 "
        "activations, the fast kernels on CPUs; 1-3 fp32/fp16/bf16)",
    )
    lm_head: Literal["auto", "fp32", "int8", "int4"] = Field(
        "auto",
        description="int4: the language-model head (the MatMul to the vocabulary): as the other "
        "MatMuls (auto), kept fp32, or 8-bit MatMulNBits",
    )
    keep_io_types: bool = Field(True, description="fp16: keep float32 model inputs and outputs")
    embeddings: Literal["auto", "fp32", "int8", "int4"] = Field(
        "auto",
        description="embedding tables (Gathers of a constant table of >= 1024 rows): auto as the "
        "mode does (dynamic: int8, one scale per table), fp32, int8, or int4 blocks "
        "(onnxruntime's GatherBlockQuantized, embedding_block_size values a scale). A MiniLM "
        "word table is 11.7 of its 22.7 M parameters",
    )
    embedding_block_size: int = Field(32, ge=16, le=1024, description="int4 embeddings: block")
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
    max_size_ratio: float | None = Field(
        None,
        gt=0,
        description="accuracy search: a candidate over this fraction of the fp32 model's size is "
        "never kept (float nodes cost 4 bytes a weight); none: no cap",
    )
    min_speedup: float | None = Field(
        None,
        gt=0,
        description="accuracy search (with speed_check): a candidate less than this many times "
        "faster than fp32 at speed_threads, timed right after fp32, is never kept; none: no cap",
    )
    max_float_macs: float | None = Field(
        None,
        gt=0,
        le=1,
        description="accuracy search: a candidate whose float nodes hold more than this share "
        "of the model's multiply-accumulates is never kept (a speed cap counted on the graph, "
        "so the same build picks the same model; float convs run slower than int8 ones); "
        "none: no cap",
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

    @field_validator("block_size", "embedding_block_size")
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


InputDtype = Literal["float32", "float16", "float64", "int64", "int32", "int8", "uint8", "bool"]


class ModelInput(Config):
    """One input of a python: factory: its name, shape (ints fixed, names symbolic: dynamic
    axes, one name = one size wherever it appears) and dtype. `NAME:SHAPE[:DTYPE]` on the
    command line, e.g. `x:batch,3,height,width` or `lengths:batch:int64`."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    shape: tuple[int | str, ...] = Field(min_length=0)
    dtype: InputDtype = "float32"

    @field_validator("shape")
    @classmethod
    def _dims(cls, v: tuple[int | str, ...]) -> tuple[int | str, ...]:
        for d in v:
            if isinstance(d, int) and d < 1:
                raise ValueError("fixed dims must be >= 1")
            if isinstance(d, str) and not d.replace("_", "a").isalnum():
                raise ValueError(f"symbolic dim {d!r} must be a name like batch or height")
        return v

    @classmethod
    def parse(cls, text: str) -> ModelInput:
        """`NAME:SHAPE[:DTYPE]`; a ValueError that says the form on anything else."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise ValueError(
                f"--input {text!r}: expected NAME:SHAPE[:DTYPE], e.g. x:batch,3,224,224"
            )
        dims = [d.strip() for d in parts[1].split(",") if d.strip()]
        shape = [int(d) if d.lstrip("-").isdigit() else d for d in dims]
        fields: dict[str, Any] = {"name": parts[0], "shape": shape}
        if len(parts) == 3:
            fields["dtype"] = parts[2]
        return cls.model_validate(fields)


class ExportModelConfig(Config):
    """`edgepack export`: any model a user brings to one ONNX file, checked against torch."""

    path_fields: ClassVar[tuple[str, ...]] = ("weights", "import_path", "feeds")

    source: str = Field(
        description="hf:FOLDER (a transformers folder, exported by optimum-onnx), "
        "python:MODULE:FACTORY (an nn.Module factory; needs inputs) or a torch.export "
        "ExportedProgram file (.pt2)"
    )
    task: str = Field("auto", description="hf: any task optimum-onnx exports; auto: from config")
    weights: str | None = Field(None, description="python: .safetensors or weights-only .pt")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="python: factory kwargs")
    import_path: str | None = Field(None, description="python: the folder MODULE is imported from")
    inputs: tuple[ModelInput, ...] = Field((), description="python: the forward's inputs, in order")
    outputs: tuple[str, ...] = Field((), description="python: output names (default: torch's)")
    dims: dict[str, int] = Field(
        default_factory=dict,
        description="example values of symbolic dims (the trace and the first parity shape); "
        "hf: optimum's shape names, e.g. sequence_length",
    )
    opset: int = Field(17, ge=7, le=23, description="the ONNX opset, chosen explicitly")
    dynamo: bool = Field(
        False, description="python: torch.onnx.export(dynamo=...); .pt2 always uses dynamo"
    )
    atol: float = Field(1e-4, gt=0, description="max |onnx - torch| allowed at every shape")
    feeds: str | None = Field(None, description="an .npz of real inputs, checked as one more shape")
    exporter: Literal["auto", "genai", "optimum", "torch"] = Field(
        "auto",
        description="task text-generation-with-past: onnxruntime-genai's model builder, "
        "optimum, torch, or auto (the builder where it knows the model, then optimum, then torch)",
    )

    @property
    def kind(self) -> Literal["hf", "python", "program"]:
        if self.source.startswith("python:"):
            return "python"
        return "program" if self.source.endswith(".pt2") else "hf"

    @model_validator(mode="after")
    def _fits_source(self) -> ExportModelConfig:
        if self.kind == "python":
            if self.source.count(":") != 2:
                raise ValueError("expected python:MODULE:FACTORY, e.g. python:mymodels:make_net")
            if not self.inputs:
                raise ValueError(
                    "a python: factory needs its inputs: --input NAME:SHAPE[:DTYPE] per forward "
                    "argument, e.g. --input x:batch,3,height,width"
                )
        elif self.inputs or self.weights or self.kwargs or self.outputs:
            raise ValueError(
                "inputs, outputs, weights and kwargs are for python: factories; a transformers "
                "folder or an ExportedProgram knows its own"
            )
        if self.kind == "program" and not self.dynamo:
            raise ValueError("an ExportedProgram exports with dynamo=True (it is already traced)")
        if self.kind != "hf" and self.task != "auto":
            raise ValueError("task applies to Hugging Face folders only")
        return self

    def input_paths(self) -> dict[str, str]:
        from packager.config.sources import python_module_file

        paths = {"weights": self.weights, "feeds": self.feeds}
        if self.kind == "python":
            module = python_module_file(self.source, self.import_path)
            paths["module"] = str(module) if module else None
        else:
            paths["source"] = str(Path(self.source.removeprefix("hf:")).expanduser())
            if self.exporter in ("auto", "genai"):
                from packager.config.lm import genai_builder_stamps

                paths |= genai_builder_stamps()
        return {k: v for k, v in paths.items() if v}

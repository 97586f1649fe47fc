"""The ONNX half of a build: `export:`, `optimize:` and `quantize:` sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from packager.config.base import Config, Dims, Threads
from packager.limits import MAX_LENGTH, MAX_RUNS, MAX_SAMPLES, MAX_TRIALS


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
    """The scheme-independent part of the `quantize:` section: which nodes stay float, the data
    the quantized model is measured on, the accuracy budget and its search, the speed check.

    Each scheme (static, dynamic, fp16, int4, none, ...) is a subclass with its own fields,
    declared and registered in one file under packager/quantize/schemes/; a recipe's
    `quantize:` section is the union of them, tagged by `mode` (the YAML stays flat), so a
    field a scheme does not take is an error when the recipe loads."""

    path_fields: ClassVar[tuple[str, ...]] = ("calib", "eval", "tokenizer", "feeds")
    # The embedding-table choices this scheme takes (subclasses narrow it), and what `auto`
    # means for it (dynamic: int8 tables, as Optimum's dynamic INT8 does).
    embedding_choices: ClassVar[tuple[str, ...]] = ("auto", "fp32", "int8", "int4")
    auto_tables: ClassVar[str] = "fp32"
    # Whether the scheme itself writes int4 blocks (int4_symmetric applies without int4 tables).
    int4_blocks: ClassVar[bool] = False

    mode: str = Field(description="the quantization scheme (each has its own fields)")
    exclude_nodes: tuple[str, ...] = Field(
        (),
        description="node names kept in float",
        json_schema_extra={"cli": "--exclude", "cli_globs": "exclude_patterns"},
    )
    exclude_patterns: tuple[str, ...] = Field(
        (), description="glob patterns over node names kept in float, e.g. '*attention*'"
    )
    exclude_op_types: tuple[str, ...] = Field(
        (),
        description="op types kept in float, e.g. Conv",
        json_schema_extra={"cli": "--exclude-op"},
    )
    embeddings: Literal["auto", "fp32", "int8", "int4"] = Field(
        "auto",
        description="embedding tables (Gathers of a constant table of >= 512 rows: word and "
        "position tables): auto as the "
        "mode does (dynamic: int8; the others leave them fp32), fp32, int8 (one scale per row), "
        "or int4 blocks (onnxruntime's GatherBlockQuantized, embedding_block_size values a "
        "scale). A MiniLM word table is 11.7 of its 22.7 M parameters",
    )
    embedding_block_size: int = Field(32, ge=16, le=1024, description="int4 embeddings: block")
    int4_symmetric: bool = Field(
        True, description="int4 (weights or embedding tables): symmetric blocks (no zero points)"
    )
    tokenizer: str | None = Field(None, description="tokenizer.json or folder, for text data")
    max_length: int = Field(128, ge=1, le=MAX_LENGTH, description="token cap per text example")
    eval: str | None = Field(
        None, description="evaluation data (same formats); none: the recipe's validation split"
    )
    eval_samples: int = Field(1000, ge=1, le=MAX_SAMPLES, description="cap on evaluation examples")
    metric: Literal["accuracy", "top5", "agreement", "sequence", "cosine", "mse", "iou"] = Field(
        "accuracy",
        description="classifiers: accuracy / top5 (vs labels), agreement (top-1 vs fp32, over "
        "class_axis); recognizers: sequence (the whole per-timestep top-1 path matches fp32); "
        "embeddings and maps: cosine, mse; detection/segmentation maps: iou at iou_threshold",
    )
    class_axis: int | None = Field(
        None,
        ge=-32,
        le=31,  # an ONNX tensor has at most a few dozen axes
        description="the class axis of the first output (accuracy, top5, agreement, sequence); "
        "none: axis 1 of 4-D+ outputs (N, C, H, W maps), else the last axis",
    )
    iou_threshold: float = Field(
        0.5,
        allow_inf_nan=False,
        description="iou: output values above it are foreground (0 for logit maps)",
    )
    max_drop: float | None = Field(
        None,
        ge=0,
        le=1,  # a metric's drop: accuracy, agreement, cosine and iou are 0 to 1
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
        le=MAX_TRIALS,
        description="cap on accuracy-search trials; with more candidate nodes than trials, "
        "each trial keeps geometrically more in float, the last one all of them",
    )
    speed_check: bool = Field(True, description="benchmark fp32 and quantized side by side")
    dims: Dims = Field(
        default_factory=dict,
        description="values of named symbolic input dims for the speed check and generated "
        "inputs when no data gives the shapes, e.g. {height: 320, width: 320}",
        json_schema_extra={"cli": "--dim"},
    )
    feeds: str | None = Field(
        None,
        description="an .npz of real inputs (one array per input name) for the speed check "
        "when neither eval nor calib data is given",
    )
    speed_threads: Threads = Field(
        1,
        description="threads of the speed check (at most 4 per core of this machine)",
        json_schema_extra={"cli": "--threads"},
    )
    speed_runs: int = Field(
        50, ge=1, le=MAX_RUNS, description="timed runs per model in the speed check"
    )

    @field_validator("embedding_block_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("block_size must be a power of two (16, 32, 64, 128, ...)")
        return v

    @field_validator("embeddings")
    @classmethod
    def _embeddings_taken(cls, v: str) -> str:
        if v not in cls.embedding_choices:
            mode = cls.model_fields["mode"].default
            raise ValueError(
                f"mode {mode} takes embeddings {', '.join(cls.embedding_choices)}"
                + (" (int8 tables: mode dynamic or int4)" if v == "int8" else "")
            )
        return v

    @model_validator(mode="after")
    def _fields_that_apply(self) -> QuantizeConfig:
        """What the base's fields need of each other; each scheme adds its own rules. A field
        that does nothing here is an error once it differs from its default (a recorded
        config, every field written out, still reads back)."""
        if type(self) is QuantizeConfig:
            raise ValueError(
                "a quantize section is one scheme's config (packager.quantize.schemes): "
                "static, dynamic, fp16, int4, none, ..."
            )
        changed = {n for n, f in type(self).model_fields.items() if getattr(self, n) != f.default}
        if "embedding_block_size" in changed and self.embeddings != "int4":
            raise ValueError("quantize.embedding_block_size applies to embeddings = int4 only")
        if "int4_symmetric" in changed and not (self.int4_blocks or self.embeddings == "int4"):
            raise ValueError(
                "quantize.int4_symmetric applies to int4 blocks: mode = int4 or embeddings = int4"
            )
        searched = ("max_size_ratio", "min_speedup", "max_float_macs", "max_trials")
        stray = [f for f in searched if f in changed]
        if stray and self.max_drop is None:
            raise ValueError(
                f"quantize.{stray[0]} shapes the accuracy search, which runs only with "
                "quantize.max_drop: set max_drop or drop it"
            )
        if self.min_speedup is not None and not self.speed_check:
            raise ValueError("quantize.min_speedup is timed by the speed check: set speed_check")
        return self

    @property
    def tables(self) -> str:
        """What happens to embedding tables: fp32, int8 or int4 (`auto` resolved)."""
        return self.auto_tables if self.embeddings == "auto" else self.embeddings

    @property
    def int4_tables(self) -> bool:
        return self.tables == "int4"

    def input_paths(self) -> dict[str, str]:
        paths = {
            "calib": getattr(self, "calib", None),
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
        description="hf:FOLDER (a transformers or sentence-transformers folder, exported by "
        "optimum-onnx), hf:pkg:MODULE/DIR (a folder inside an installed Python package), "
        "hf:OWNER/NAME[@REVISION] (a Hub id in the local Hugging Face cache), "
        "python:MODULE:FACTORY (an nn.Module factory; needs inputs) or a torch.export "
        "ExportedProgram file (.pt2)"
    )
    task: str = Field(
        "auto",
        description="hf: any task optimum-onnx exports; auto: what optimum detects "
        "(feature-extraction for sentence-transformers, image-classification for timm), "
        "else from config.json's architecture",
    )
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
        from packager.config.sources import hf_folder, python_module_file

        paths = {"weights": self.weights, "feeds": self.feeds}
        if self.kind == "python":
            module = python_module_file(self.source, self.import_path)
            paths["module"] = str(module) if module else None
        elif self.kind == "hf":  # a folder, hf:pkg:MODULE/DIR or a Hub id's cached snapshot
            folder = hf_folder(self.source)
            paths["source"] = str(folder) if folder else None
            if self.exporter in ("auto", "genai"):
                from packager.config.lm import genai_builder_stamps

                paths |= genai_builder_stamps()
        else:
            paths["source"] = str(Path(self.source).expanduser())
        return {k: v for k, v in paths.items() if v}

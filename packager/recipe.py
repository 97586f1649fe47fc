"""Recipes: YAML validated by pydantic into frozen, typed stage configs (packager.config).

A recipe holds per-model knowledge (source, data, student shape, tolerances); the code holds
mechanisms. `--set section.field=value` overrides are applied to the YAML before validation so
that they are checked exactly like the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from packager.config import (
    LM_TASK,
    TEXT_TASKS,
    AutoConfig,
    BenchConfig,
    Config,
    DataConfig,
    DistillConfig,
    EvaluateConfig,
    ExportConfig,
    GenerateConfig,
    OptimizeConfig,
    PackageConfig,
    ProvenanceConfig,
    QuantizeConfig,
    Task,
    TeacherConfig,
)
from packager.config.api import api_rules
from packager.config.distill import POOLED_LOSSES
from packager.config.lm import BUILTIN_LMS
from packager.config.modalities import MODALITIES, modality_of, stray_data_fields
from packager.errors import RecipeError
from packager.quantize.schemes import SCHEMES, QuantizeSection, quantize_config, tracks
from packager.recipe_errors import format_error
from packager.recipe_yaml import (  # noqa: F401  (parse_override, apply_overrides: callers import them from here)
    AliasError,
    apply_overrides,
    load_yaml,
    parse_override,
    profile_overrides,
)

# The recipes in the repo's models/; an installed edgepack carries them as packager/recipes.
REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
if not REPO_MODELS.is_dir():
    REPO_MODELS = Path(__file__).resolve().parent / "recipes"
DEFAULT_RECIPE = "models/digits.yaml"


# NAME.edgepack (and NAME.edgepack.sig beside it) must fit a file name's 255 bytes, with room
# for a naming duty's prefix (e.g. "Llama-3-"): checked when the recipe loads, not at the last
# rename of the build.
MAX_NAME = 200


class Recipe(Config):
    name: str = Field(
        "digits",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=MAX_NAME,
        description=f"the package's name: NAME.edgepack; letters, digits, _ . -, at most "
        f"{MAX_NAME} characters (a file name holds 255 bytes)",
    )
    description: str = ""
    task: Task = "image-classification"
    teacher: TeacherConfig = TeacherConfig()
    data: DataConfig = DataConfig()
    distill: DistillConfig = DistillConfig()
    generate: GenerateConfig = GenerateConfig()
    export: ExportConfig = ExportConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    quantize: QuantizeSection = Field(
        default_factory=lambda: quantize_config(),
        description="the quantization scheme (mode) and its settings; each mode takes its own "
        "fields (packager.quantize.schemes)",
    )
    evaluate: EvaluateConfig = EvaluateConfig()
    bench: BenchConfig = BenchConfig()
    auto: AutoConfig = AutoConfig()  # edgepack auto's search space; no build step reads it
    package: PackageConfig = PackageConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    # The folder of the recipe's file (None for a recipe made in code): what the package's
    # published paths are made relative to. Not a field: the recipe's content is its key.
    _folder: Path | None = PrivateAttr(None)

    @property
    def folder(self) -> Path | None:
        return self._folder

    def __eq__(self, other: object) -> bool:
        # Where a recipe was read from is not what it is: two recipes with equal fields are
        # equal (pydantic would compare the private folder too).
        if not isinstance(other, Recipe):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = Config.__hash__

    @model_validator(mode="before")
    @classmethod
    def _distill_none(cls, data: Any) -> Any:
        # `distill: none`: the teacher is what ships (quantized, evaluated, packaged).
        if (
            isinstance(data, dict)
            and data.get("distill") in ("none", None, False)
            and ("distill" in data)
        ):
            return {**data, "distill": {"enabled": False}}
        return data

    @model_validator(mode="after")
    def _task_fits_sources(self) -> Recipe:
        lm = self.task == LM_TASK
        if lm or self.distill.student.arch == "causal-lm" or self.generate.enabled:
            return self._lm_fits()
        text = self.task in TEXT_TASKS
        hf = self.teacher.scheme in ("hf", "api")  # a folder, or an endpoint that answers text
        transformer = self.distill.student.arch in ("transformer", "static")
        if self.distill.student.arch == "static" and not (
            self.distill.student.tune or self.task == "feature-extraction"
        ):
            raise ValueError(
                "distill.student.tune = false: an untuned static student has no classifier head "
                f"for task {self.task} (tune it, or use task feature-extraction)"
            )
        if self.distill.student.arch == "pruned" and self.modality != "image":
            raise ValueError("distill.student.arch pruned needs image data (a data.image section)")
        reads = MODALITIES[self.modality].reads(self.data)
        if text != hf or text != transformer or not reads:
            need = (
                "teacher.source hf:... or api:..., distill.student.arch transformer or static and "
                "a text data.source "
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
        if self.distill.trim_vocab is not None and self.distill.student.arch != "transformer":
            raise ValueError("distill.trim_vocab applies to transformer students (text tasks)")
        token_level = used - POOLED_LOSSES
        if self.distill.cache_teacher == "on" and token_level:
            raise ValueError(
                f"distill.cache_teacher = on caches the teacher's output only; distill.losses "
                f"{sorted(token_level)} need the teacher at every step (drop them or set "
                "cache_teacher = auto)"
            )
        return self

    def _lm_fits(self) -> Recipe:
        t = self.teacher
        ok = t.scheme in ("hf", "api") or (t.scheme == "builtin" and t.spec in BUILTIN_LMS)
        if not self.distill.enabled:  # a pretrained LM packaged as it is (models/lm-pack.yaml)
            if self.task != LM_TASK or not ok:
                raise ValueError(
                    "distill: none packages a causal LM as it is: task text-generation and "
                    "teacher.source hf:FOLDER"
                )
            if self.generate.enabled:
                raise ValueError(
                    "generate writes the teacher's completions for distillation; with distill: "
                    "none there is no student to train on them: set generate.enabled = false"
                )
            if not MODALITIES["lm"].reads(self.data):
                raise ValueError("task text-generation needs a text data.source (.txt/.jsonl/...)")
            return self
        if self.task != LM_TASK or not ok or self.distill.student.arch != "causal-lm":
            names = ", ".join(f"builtin:{n}" for n in BUILTIN_LMS)
            raise ValueError(
                f"task text-generation needs teacher.source hf:FOLDER (a causal LM) or {names}, "
                "distill.student.arch causal-lm and a text data.source; generate and causal-lm "
                "students are for task text-generation only"
            )
        if self.modality != "lm" or not MODALITIES["lm"].reads(self.data):
            raise ValueError("task text-generation needs a text data.source (.txt/.jsonl/...)")
        if self.distill.cache_teacher == "on":
            raise ValueError("distill.cache_teacher is for encoders; LMs use distill.teacher_topk")
        live = set(self.distill.loss_weights(LM_TASK)) & {"reverse_kl", "jsd"}
        if self.distill.teacher_topk and (live or self.distill.on_policy > 0):
            raise ValueError(
                "distill.teacher_topk caches the teacher's top-k logits for forward KL "
                f"(logits_kd) and CE; {sorted(live) or 'on_policy'} need the live teacher's "
                "whole distribution: drop teacher_topk or those"
            )
        if self.generate.enabled and self.data.completion_column:
            raise ValueError(
                "generate.enabled writes the teacher's completions; data.completion_column brings "
                "your own: choose one"
            )
        return self

    @model_validator(mode="after")
    def _api_fits(self) -> Recipe:
        """What a teacher you can only call can teach (packager.config.api: api_rules)."""
        if self.teacher.api is not None:
            api_rules(self.teacher, self.task, self.distill, self.generate)
        return self

    @property
    def distill_losses(self) -> dict[str, float] | None:  # API labels: CE alone by default
        d = self.distill
        if self.teacher.scheme == "api" and self.task == "text-classification" and not d.losses:
            return {"label_ce": 1.0}
        return d.losses.active() if d.losses is not None else None

    @property
    def modality(self) -> str:
        """The kind of data the build learns from and ships for (packager.config.modalities)."""
        return modality_of(self.task, self.data)

    @model_validator(mode="after")
    def _scheme_fits(self) -> Recipe:
        """The quantization scheme serves the recipe's modality (a language model takes no
        calibrated scheme and no accuracy search), and auto's modes are known schemes."""
        modality, scheme = self.modality, SCHEMES[self.quantize.mode]
        stray = stray_data_fields(modality, self.data)
        if stray:
            takes = [m for m, d in MODALITIES.items() if stray[0] in d.data_fields]
            raise ValueError(
                f"data.{stray[0]} is read for {' or '.join(takes)} data; this recipe's data is "
                f"{modality} ({MODALITIES[modality].summary}): drop it"
            )
        if modality not in scheme.modalities:
            takes = ", ".join(m for m, s in SCHEMES.items() if modality in s.modalities)
            raise ValueError(
                f"quantize.mode {self.quantize.mode} does not serve {modality} data "
                f"({MODALITIES[modality].summary}); it takes: {takes}"
            )
        if modality == "lm" and self.quantize.max_drop is not None:
            raise ValueError(
                "quantize.max_drop: a language model has no accuracy search "
                "(evaluate.max_ppl_ratio and evaluate.min_agreement are its accuracy gates)"
            )
        unknown = [m for m in self.auto.quantize or () if m not in SCHEMES]
        if unknown:
            raise ValueError(
                f"auto.quantize: {', '.join(unknown)} is not a quantization mode "
                f"(modes: {', '.join(SCHEMES)})"
            )
        return self

    @model_validator(mode="after")
    def _known_targets(self) -> Recipe:
        from packager.bench.errors import BenchError
        from packager.bench.targets import check_target_names

        try:
            check_target_names(self.bench.targets, self.bench.targets_dir)
        except BenchError as err:
            got = json.dumps(list(self.bench.targets))
            raise ValueError(f"bench.targets = {got} is not allowed: {err}") from None
        return self


tracks(Recipe)  # rebuilt when a quantization scheme registers


def resolve_recipe_path(path: str | Path | None) -> Path:
    """The recipe file to read; `models/NAME.yaml` also resolves against the repo's models/."""
    p = Path(path or DEFAULT_RECIPE)
    if p.exists():
        return p
    bundled = REPO_MODELS / p.name
    if p.parent.name == "models" and bundled.exists():
        return bundled
    raise RecipeError(f"recipe {p}: file not found (see `edgepack recipes`)")


def relative_to_recipe(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """The recipe's sections with every relative path they name (Config.path_fields, data and
    teacher sources, a python: teacher's import folder) joined to the recipe's folder `base`.
    `--set` values are applied afterwards, as given: relative to the working directory.
    package.out_dir is where results go, not a file read: it stays relative to the working
    directory, like any build output."""
    out = dict(data)
    for name, value in data.items():
        field = Recipe.model_fields.get(name)
        cls = QuantizeConfig if name == "quantize" else field.annotation if field else None
        if isinstance(value, dict) and isinstance(cls, type) and issubclass(cls, Config):
            out[name] = cls.relative_to(value, base)
    return out


def build_recipe(
    data: dict[str, Any], source: str = "<recipe>", folder: Path | None = None
) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {source}: expected a mapping of sections at the top level")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(format_error(source, err, Recipe)) from None
    recipe._folder = folder
    return recipe


def load_recipe(
    path: str | Path | None = None, overrides: tuple[str, ...] = (), profile: str | None = None
) -> Recipe:
    """A recipe file with its `profiles.PROFILE` applied, then `overrides` (--set)."""
    from packager.edge_runtime import MAX_RECIPE_BYTES, read_user_file

    p = resolve_recipe_path(path)
    # A FIFO or device refused unopened, a file over 1 MiB unread (a recipe is a few KB).
    text = read_user_file(p, MAX_RECIPE_BYTES, f"recipe {p}")
    try:
        data = load_yaml(text.decode("utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        why = str(err) if isinstance(err, AliasError) else "not valid YAML"
        raise RecipeError(f"recipe {p}:{where}: {why}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"recipe {p}: cannot read ({err})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {p}: expected a mapping of sections at the top level")
    # a profile is part of the recipe: its paths are relative to the recipe's folder too
    data = apply_overrides(data, profile_overrides(data, profile, str(p)))
    data = relative_to_recipe(data, p.resolve().parent)
    return build_recipe(apply_overrides(data, overrides), str(p), p.resolve().parent)


def with_accepted_terms(recipe: Recipe, ids: tuple[str, ...]) -> Recipe:
    """`recipe` with `edgepack build --accept-terms ID ...` added to provenance.accept_terms."""
    if not ids:
        return recipe
    section = recipe.provenance.to_json()
    section["accept_terms"] = [*section["accept_terms"], *ids]
    data = {**recipe.to_json(), "provenance": section}
    return build_recipe(data, "--accept-terms", recipe.folder)


def recipe_profiles(path: str | Path) -> dict[str, dict[str, Any]]:
    """The `profiles:` section of a recipe file, as written."""
    data = load_yaml(resolve_recipe_path(path).read_text()) or {}
    return dict(data.get("profiles") or {}) if isinstance(data, dict) else {}


def list_recipes(folder: Path = REPO_MODELS) -> list[tuple[str, str]]:
    """(path, first-line description) of each recipe in models/."""
    out = []
    for p in sorted(folder.glob("*.yaml")):
        first = p.read_text().splitlines()[0] if p.stat().st_size else ""
        out.append((str(p), first.lstrip("# ").strip()))
    return out

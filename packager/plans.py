"""Every plan: the build graph, the single-stage commands' graphs, their step names, variants.

A plan is a list of `Step`s in topological order; each names its stage's config and its inputs
as role -> step. Stages read inputs by role (`ctx.inputs["data"]`, `ctx.inputs["student_int8"]`),
so the step names and the shape of the graph live here and nowhere else.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from packager.artifact import VARIANTS
from packager.config import (
    BenchConfig,
    Config,
    DistillStepConfig,
    EvaluateStepConfig,
    ExportModelConfig,
    ModelFileConfig,
    OptimizeConfig,
    PackageFileConfig,
    PackageStepConfig,
    QuantizeConfig,
    TeacherStepConfig,
)
from packager.errors import InputFileError, RecipeError
from packager.recipe import Recipe
from packager.stage import Step

# Build steps whose ONNX output is a model variant, and the variant (input role) each one is.
VARIANT_STEPS = dict(zip(("export_teacher", "export", "quantize"), VARIANTS, strict=True))


def _bind(cls: type[Config], section: Config, **extra: Any) -> Config:
    """A stage config made of a recipe section plus the recipe-level fields its stage reads."""
    return cls.model_validate({**section.model_dump(), **extra})


def build_plan(recipe: Recipe) -> list[Step]:
    """The build DAG, in topological order."""
    if recipe.quantize.mode == "none" and recipe.package.model == "int8":
        raise RecipeError(
            "recipe: package.model = int8 ships the quantized model; set quantize.mode to "
            "static, dynamic, fp16 or int4, or package.model = fp32"
        )
    task = recipe.task
    steps = [
        Step("data", recipe.data),
        Step("teacher", _bind(TeacherStepConfig, recipe.teacher, task=task), {"data": "data"}),
        Step("export_teacher", recipe.export, {"model": "teacher", "data": "data"}),
        Step(
            "distill",
            _bind(DistillStepConfig, recipe.distill, task=task),
            {"teacher": "teacher", "data": "data"},
        ),
        Step("export", recipe.export, {"model": "distill", "data": "data"}),
    ]
    upstream = "export"
    if recipe.optimize.enabled:  # off by default: see OptimizeConfig and the README
        steps.append(Step("optimize", recipe.optimize, {"model": "export"}))
        upstream = "optimize"
    variants = ["export_teacher", "export"]
    if recipe.quantize.mode != "none":
        roles = {"model": upstream, "data": "data"}
        if upstream != "export":  # sizes, metric and speed stay relative to the export
            roles["original"] = "export"
        steps.append(Step("quantize", recipe.quantize, roles))
        variants.append("quantize")
    models = {VARIANT_STEPS[s]: s for s in variants}
    evaluate = _bind(EvaluateStepConfig, recipe.evaluate, task=task)
    steps.append(Step("evaluate", evaluate, {**models, "data": "data"}))
    if recipe.bench.enabled:
        steps.append(Step("bench", recipe.bench, models))
    shipped = "quantize" if recipe.package.model == "int8" else "export"
    package = _bind(
        PackageStepConfig,
        recipe.package,
        name=recipe.name,
        task=task,
        description=recipe.description,
        recipe=recipe.to_json(),
    )
    roles = {"model": shipped, "data": "data", "evaluate": "evaluate", "teacher": "teacher"}
    roles["student"] = "distill"
    if recipe.bench.enabled:
        roles["bench"] = "bench"
    steps.append(Step("package", package, roles))
    return steps


def model_step(name: str, path: str | Path) -> Step:
    """The step that brings a user's `.onnx` model or `.edgepack` package into the cache."""
    p = Path(path)
    if p.suffix == ".onnx":
        return Step(name, ModelFileConfig.for_file(p))
    if p.suffix == ".edgepack" or (p.is_dir() and (p / "manifest.json").is_file()):
        return Step(name, PackageFileConfig.for_file(p))
    if not p.exists():
        raise InputFileError(f"{path}: file not found")
    raise InputFileError(f"{path}: expected an .onnx model or an .edgepack package")


def export_plan(cfg: ExportModelConfig) -> list[Step]:
    """`edgepack export`: one step, from the user's source (its files are stamped into the key
    by content) to a checked ONNX model."""
    return [Step("export", cfg)]


def quantize_plan(
    model: str | Path, cfg: QuantizeConfig, optimize: OptimizeConfig | None = None
) -> list[Step]:
    """`edgepack quantize`: model file -> [optimize] -> quantize (data files are stamped into
    the quantize step's key by content, like every path a config names)."""
    steps = [Step("model", ModelFileConfig.for_file(model))]
    roles = {"model": "model"}
    if optimize is not None and optimize.enabled:
        steps.append(Step("optimize", optimize, {"model": "model"}))
        # Every size, the metric and the speed check stay relative to the user's file.
        roles = {"model": "optimize", "original": "model"}
    steps.append(Step("quantize", cfg, roles))
    return steps


def bench_plan(paths: list[str | Path], cfg: BenchConfig) -> list[Step]:
    """`edgepack bench`: each model or package file -> one bench step over all of them."""
    from packager.bench.errors import BenchError
    from packager.bench.targets import check_target_names

    try:
        check_target_names(cfg.targets, cfg.targets_dir)
    except BenchError as err:
        raise RecipeError(f"bench targets: {err}") from None
    steps = [model_step(f"model{i}", p) for i, p in enumerate(paths)]
    # A benchmark is an observation: rerunning the command measures again (a fresh key).
    nonce = str(time.time_ns())
    steps.append(Step("bench", cfg, {s.name: s.name for s in steps}, extra=nonce))
    return steps

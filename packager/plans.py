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
    ProbeConfig,
    ProvenanceStepConfig,
    QuantizeConfig,
    TeacherOutputsConfig,
    TeacherStepConfig,
    TrimVocabConfig,
)
from packager.config.sources import DEFAULT_PROBE
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
    distill = _bind(DistillStepConfig, recipe.distill, task=task)
    # First: the gate on what may be distilled stops a strict build before anything is trained.
    provenance = _bind(
        ProvenanceStepConfig,
        recipe.provenance,
        name=recipe.name,
        source_teacher=recipe.teacher.to_json(),
        source_data=recipe.data.to_json(),
    )
    steps = [
        Step("provenance", provenance),
        Step("data", recipe.data),
        Step("teacher", _bind(TeacherStepConfig, recipe.teacher, task=task), {"data": "data"}),
        Step("export_teacher", recipe.export, {"model": "teacher", "data": "data"}),
    ]
    student, fp32 = _student_steps(recipe, distill, steps)
    upstream = fp32
    if recipe.optimize.enabled:  # off by default: see OptimizeConfig and the README
        steps.append(Step("optimize", recipe.optimize, {"model": fp32}))
        upstream = "optimize"
    models = {"teacher_fp32": "export_teacher", "student_fp32": fp32}
    if recipe.quantize.mode != "none":
        roles = {"model": upstream, "data": "data"}
        if upstream != fp32:  # sizes, metric and speed stay relative to the export
            roles["original"] = fp32
        steps.append(Step("quantize", recipe.quantize, roles))
        models["student_int8"] = "quantize"
    evaluate = _bind(EvaluateStepConfig, recipe.evaluate, task=task)
    roles = {**models, "data": "data"}
    if recipe.data.modality == "text":  # fidelity on text of another kind than the training data
        source = recipe.evaluate.probe or DEFAULT_PROBE
        steps.append(Step("probe", ProbeConfig(source=source, limit=recipe.evaluate.probe_limit)))
        roles["probe"] = "probe"
    steps.append(Step("evaluate", evaluate, roles))
    if recipe.bench.enabled:  # text variants are timed on real, tokenised test texts
        text = {"data": "data"} if recipe.data.modality == "text" else {}
        steps.append(Step("bench", recipe.bench, {**models, **text}))
    shipped = "quantize" if recipe.package.model == "int8" else fp32
    package = _bind(
        PackageStepConfig,
        recipe.package,
        name=recipe.name,
        task=task,
        description=recipe.description,
        recipe=recipe.to_json(),
        method=_method(recipe),
    )
    roles = {"model": shipped, "data": "data", "evaluate": "evaluate", "teacher": "teacher"}
    roles |= {"student": student, "provenance": "provenance"}
    if recipe.bench.enabled:
        roles["bench"] = "bench"
    steps.append(Step("package", package, roles))
    return steps


def _student_steps(recipe: Recipe, distill: Config, steps: list[Step]) -> tuple[str, str]:
    """Append the steps that make the student; (its step, its fp32 export's step). With
    `distill: none` the teacher is the student and export_teacher its export."""
    if not recipe.distill.enabled:
        return "teacher", "export_teacher"
    distill_roles = {"teacher": "teacher", "data": "data"}
    if distill.uses_teacher_cache:  # the teacher runs once per corpus, not once per epoch
        cached = TeacherOutputsConfig(task=recipe.task, max_length=recipe.data.max_length)
        steps.append(Step("teacher_outputs", cached, {"teacher": "teacher", "data": "data"}))
        distill_roles["teacher_outputs"] = "teacher_outputs"
    steps.append(Step("distill", distill, distill_roles))
    student = "distill"
    if recipe.distill.trim_vocab is not None:  # a smaller word table for the pieces in use
        trim = TrimVocabConfig(min_count=recipe.distill.trim_vocab)
        steps.append(Step("trim_vocab", trim, {"student": "distill", "data": "data"}))
        student = "trim_vocab"
    steps.append(Step("export", recipe.export, {"model": student, "data": "data"}))
    return student, "export"


def _method(recipe: Recipe) -> dict[str, Any]:
    """The distillation method as configured, for the manifest's `provenance.method`."""
    d = recipe.distill
    if not d.enabled:
        return {"type": "none"}
    losses = {k: round(w, 6) for k, w in d.loss_weights(recipe.task).items()}
    return {
        "losses": losses,
        "temperature": d.temperature if "logits_kd" in losses else None,
        "epochs": d.epochs,
        "batch_size": d.batch_size,
        "lr": d.lr,
        "seed": d.seed,
        "student": d.student.to_json(),
    }


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

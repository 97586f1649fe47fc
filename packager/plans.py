"""Every plan: the build graph, the single-stage commands' graphs, their step names, variants.

A plan is a list of `Step`s in topological order; each names its stage's config and its inputs
as role -> step. Stages read inputs by role (`ctx.inputs["data"]`, `ctx.inputs["student_int8"]`),
so the step names and the shape of the graph live here and nowhere else.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from packager.config import (
    LM_TASK,
    BenchConfig,
    CalibrateConfig,
    ComputeConfig,
    Config,
    DistillStepConfig,
    EvaluateStepConfig,
    ExportModelConfig,
    GenerateStepConfig,
    LMDataConfig,
    ModelFileConfig,
    OptimizeConfig,
    PackageFileConfig,
    PackageStepConfig,
    ProbeConfig,
    ProvenanceStepConfig,
    QuantizeConfig,
    SketchConfig,
    TeacherLogitsConfig,
    TeacherOutputsConfig,
    TeacherStepConfig,
    TokenizeConfig,
    TrimVocabConfig,
)
from packager.config.sources import DEFAULT_PROBE
from packager.errors import InputFileError, RecipeError
from packager.recipe import Recipe
from packager.stage import Step


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
    if recipe.task == LM_TASK:
        return lm_plan(recipe)
    steps = [
        *_head(recipe),
        Step("data", recipe.data),
        _teacher(recipe),
        Step("export_teacher", recipe.export, {"model": "teacher", "data": "data"}),
    ]
    # With `distill: none` the teacher is the student and export_teacher its export.
    student, fp32 = "teacher", "export_teacher"
    if recipe.distill.enabled:
        student, student_steps = _student(recipe)
        steps += student_steps
        steps.append(Step("export", recipe.export, {"model": student, "data": "data"}))
        fp32 = "export"
    upstream = fp32
    if recipe.optimize.enabled:  # off by default: see OptimizeConfig and the README
        steps.append(Step("optimize", recipe.optimize, {"model": fp32}))
        upstream = "optimize"
    return steps + _ship(recipe, student, fp32, upstream, text=recipe.data.modality == "text")


def compute_of(recipe: Recipe) -> ComputeConfig:
    """distill.device and distill.precision resolved on this machine (packager.nets.device):
    a device that is not here, or a precision it cannot run, is one error line now, before
    any step runs."""
    from packager.nets.device import resolve

    d = recipe.distill
    c = resolve(d.device, d.precision, d.workers)
    return ComputeConfig(
        device=c.device,
        kind=c.kind,
        precision=c.precision,
        workers=c.workers,
        checkpoint_steps=d.checkpoint_steps,
        nproc=d.nproc,
        restarts=d.restarts,
    )


def _teacher(recipe: Recipe) -> Step:
    """The teacher step; a builtin array or language-model teacher is trained in the build, on
    the build's compute (pretrained image architectures and hf: folders are only loaded)."""
    trained = recipe.teacher.source.startswith("builtin:") and recipe.data.image is None
    compute = compute_of(recipe) if trained else None
    cfg = _bind(TeacherStepConfig, recipe.teacher, task=recipe.task, compute=compute)
    return Step("teacher", cfg, {"data": "data"})


def _head(recipe: Recipe) -> list[Step]:
    """provenance (the gate, first: a strict build stops before anything is trained)."""
    provenance = _bind(
        ProvenanceStepConfig,
        recipe.provenance,
        name=recipe.name,
        source_teacher=recipe.teacher.to_json(),
        source_data=recipe.data.to_json(),
    )
    return [Step("provenance", provenance)]


def _student(recipe: Recipe) -> tuple[str, list[Step]]:
    """(the step the student comes out of, the steps that make it): [teacher_outputs], distill,
    [trim_vocab]."""
    student_cfg, q = recipe.distill.student, recipe.quantize
    int4_table = (
        q.embeddings == "int4"
        and student_cfg.arch == "transformer"
        and student_cfg.freeze_embeddings
    )
    compute = compute_of(recipe)
    distill = _bind(
        DistillStepConfig,
        recipe.distill,
        task=recipe.task,
        int4_embedding_block=q.embedding_block_size if int4_table else None,
        int4_embedding_symmetric=q.int4_symmetric,
        compute=compute,
    )
    steps, roles = [], {"teacher": "teacher", "data": "data"}
    if student_cfg.arch == "transformer":  # token ids once per tokenizer and corpus
        tokens = TokenizeConfig(max_length=recipe.data.max_length)
        steps.append(Step("tokenize", tokens, {"teacher": "teacher", "data": "data"}))
        roles["tokens"] = "tokenize"
    if distill.uses_teacher_cache:  # the teacher runs once per corpus, not once per epoch
        cached = TeacherOutputsConfig(
            task=recipe.task, max_length=recipe.data.max_length, compute=compute
        )
        steps.append(
            Step(
                "teacher_outputs",
                cached,
                {"teacher": "teacher", "data": "data", "tokens": "tokenize"},
            )
        )
        roles["teacher_outputs"] = "teacher_outputs"
    steps.append(Step("distill", distill, roles))
    if recipe.distill.trim_vocab is None:
        return "distill", steps
    trim = TrimVocabConfig(min_count=recipe.distill.trim_vocab)  # the word pieces in use
    steps.append(Step("trim_vocab", trim, {"student": "distill", "data": "data"}))
    return "trim_vocab", steps


def _ship(
    recipe: Recipe,
    student: str,
    fp32: str,
    upstream: str,
    *,
    text: bool = False,
    lm: bool = False,
) -> list[Step]:
    """quantize, [probe], evaluate, [bench], package: what every build ends with, from the
    student's step, its fp32 export's and the model quantize reads. Text builds are measured
    on a probe too and benchmarked on real tokenised text."""
    steps = []
    models = {"teacher_fp32": "export_teacher", "student_fp32": fp32}
    if recipe.quantize.mode != "none":
        roles = {"model": upstream, "data": "data"}
        if upstream != fp32:  # sizes, metric and speed stay relative to the export
            roles["original"] = fp32
        steps.append(Step("quantize", recipe.quantize, roles))
        models["student_int8"] = "quantize"
    roles = {**models, "data": "data"}
    if text:  # fidelity on text of another kind than the training data
        source = recipe.evaluate.probe or DEFAULT_PROBE
        steps.append(Step("probe", ProbeConfig(source=source, limit=recipe.evaluate.probe_limit)))
        roles["probe"] = "probe"
    evaluate = _bind(EvaluateStepConfig, recipe.evaluate, task=recipe.task)
    steps.append(Step("evaluate", evaluate, roles))
    if recipe.bench.enabled:  # text variants are timed on real, tokenised test texts
        steps.append(
            Step("bench", recipe.bench, {**models, **({"data": "data"} if text or lm else {})})
        )
    shipped = "quantize" if recipe.package.model == "int8" and "student_int8" in models else fp32
    package = _bind(
        PackageStepConfig,
        recipe.package,
        name=recipe.name,
        task=recipe.task,
        description=recipe.description,
        recipe=recipe.to_json(),
        method=_method(recipe),
    )
    roles = {"model": shipped, "data": "data", "evaluate": "evaluate", "teacher": "teacher"}
    roles |= {"student": student, "provenance": "provenance"}
    if recipe.bench.enabled:
        roles["bench"] = "bench"
    if lm and recipe.generate.enabled:
        roles["generated"] = "generate"
    steps.append(Step("package", package, roles))
    return steps


def lm_plan(recipe: Recipe) -> list[Step]:
    """The build DAG of a causal language model (task text-generation)."""
    task, compute = recipe.task, compute_of(recipe)
    steps = [*_head(recipe), Step("data", _bind(LMDataConfig, recipe.data)), _teacher(recipe)]
    roles = {"teacher": "teacher", "data": "data"}
    if recipe.generate.enabled:  # sequence-level KD: the teacher's completions, cached
        generate = _bind(GenerateStepConfig, recipe.generate, compute=compute)
        steps.append(Step("generate", generate, {"teacher": "teacher", "data": "data"}))
        roles["generated"] = "generate"
    # the training text (and the teacher's completions) packed into sequences once
    tokens = TokenizeConfig(max_length=recipe.data.max_length)
    steps.append(Step("tokenize", tokens, dict(roles)))
    roles = {**roles, "tokens": "tokenize"}
    if recipe.distill.teacher_topk:  # the teacher's top-k logits once per corpus
        topk = TeacherLogitsConfig(
            k=recipe.distill.teacher_topk, max_length=recipe.data.max_length, compute=compute
        )
        steps.append(Step("teacher_logits", topk, dict(roles)))
        roles["teacher_logits"] = "teacher_logits"
    distill = _bind(DistillStepConfig, recipe.distill, task=task, compute=compute)
    steps += [
        Step("export_teacher", recipe.export, {"model": "teacher", "data": "data"}),
        Step("distill", distill, roles),
        Step("export", recipe.export, {"model": "distill", "data": "data"}),
    ]
    return steps + _ship(recipe, "distill", "export", "export", lm=True)


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
        "precision": d.precision,
        "nproc": d.nproc,
        "student": d.student.to_json(),
        **(
            {"jsd_beta": d.jsd_beta, "on_policy": d.on_policy, "teacher_topk": d.teacher_topk}
            if recipe.task == LM_TASK
            else {}
        ),
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
    return calibrated(steps, cfg)


def calibrate_step(*, quick: bool = False) -> Step:
    """The latency model's host calibration, keyed by this host's CPU, ISA and onnxruntime."""
    from packager.bench.latency import describe_host

    h = describe_host()
    cfg = CalibrateConfig(
        cpu=str(h["cpu"]),
        arch=str(h["arch"]),
        onnxruntime=str(h["onnxruntime"]),
        flags=tuple(h["flags"]),
        cores=h.get("usable_cores") or 1,
        quick=quick,
    )
    return Step("calibrate", cfg)


def sketch_plan(recipe: Recipe) -> list[Step]:
    """`edgepack auto`'s cost of a candidate, no training: data, teacher, the untrained student
    (sketch), its export and its quantization as the recipe says."""
    steps = [
        Step("data", recipe.data),
        _teacher(recipe),
        Step(
            "sketch",
            SketchConfig(student=recipe.distill.student, task=recipe.task),
            {"teacher": "teacher", "data": "data"},
        ),
        Step("export", recipe.export, {"model": "sketch", "data": "data"}),
    ]
    if recipe.quantize.mode != "none":
        steps.append(Step("quantize", recipe.quantize, {"model": "export", "data": "data"}))
    return steps


def trial_plan(recipe: Recipe) -> list[Step]:
    """One trained trial of `edgepack auto`: the build up to evaluate (no bench, no package)."""
    return [s for s in build_plan(recipe) if s.name not in ("bench", "package")]


def calibrated(steps: list[Step], bench: BenchConfig) -> list[Step]:
    """`steps` with the host calibration first and the bench step reading it, when a target
    profile gets estimates (the latency model's beside the roofline's); else unchanged."""
    from packager.bench.targets import is_ssh, load_targets

    profiles = load_targets(bench.targets_dir)
    if not any(
        not is_ssh(t) and t in profiles and not profiles[t].host and profiles[t].can_estimate()
        for t in bench.targets
    ):
        return steps
    out = [calibrate_step()]
    for s in steps:
        if s.name == "bench":
            s = Step(s.name, s.config, {**s.roles, "calibration": "calibrate"}, s.extra)
        out.append(s)
    return out


def auto_plan(recipe: Recipe, search: dict[str, Any]) -> list[Step]:
    """The candidate `edgepack auto` chose, built like any recipe; its package's manifest and
    report record the search (space, trials, constraints, the pick and why)."""
    steps = calibrated(build_plan(recipe), recipe.bench)
    out = []
    for s in steps:
        if s.name == "package":
            s = Step(s.name, _bind(PackageStepConfig, s.config, search=search), s.roles, s.extra)
        out.append(s)
    return out

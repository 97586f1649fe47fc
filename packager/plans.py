"""Every plan: the build graph, the single-stage commands' graphs, their step names, variants.

A plan is a list of `Step`s in topological order; each names its stage's config and its inputs
as role -> step. Stages read inputs by role (`ctx.inputs["data"]`, `ctx.inputs["student_quantized"]`),
so the step names and the shape of the graph live here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from packager.artifact import QUANTIZED

# The single-model commands' plans live in packager.command_plans; every plan is reached here.
from packager.command_plans import (  # noqa: F401
    bench_plan,
    calibrate_step,
    calibrated,
    export_plan,
    model_step,
    quantize_plan,
)
from packager.config import (
    LM_TASK,
    ComputeConfig,
    Config,
    DataStepConfig,
    DistillStepConfig,
    EvaluateStepConfig,
    GenerateStepConfig,
    PackageStepConfig,
    ProbeConfig,
    ProvenanceStepConfig,
    SketchConfig,
    TeacherLogitsConfig,
    TeacherOutputsConfig,
    TeacherStepConfig,
    TokenizeConfig,
    TrimVocabConfig,
)
from packager.config.sources import DEFAULT_PROBE
from packager.errors import RecipeError
from packager.recipe import Recipe
from packager.stage import Step


def _bind(cls: type[Config], section: Config, **extra: Any) -> Config:
    """A stage config made of a recipe section plus the recipe-level fields its stage reads."""
    return cls.model_validate({**section.model_dump(), **extra})


def _data(recipe: Recipe) -> Step:
    """The data step: the `data:` section and the recipe's modality, which it records."""
    return Step("data", _bind(DataStepConfig, recipe.data, modality=recipe.modality))


def build_plan(recipe: Recipe) -> list[Step]:
    """The build DAG, in topological order."""
    if recipe.quantize.mode == "none" and recipe.package.model == "quantized":
        raise RecipeError(
            "recipe: package.model = quantized ships the quantized model; set quantize.mode to "
            "a scheme (static, dynamic, fp16, int4, ...), or package.model = fp32"
        )
    if _called(recipe):
        return api_plan(recipe)
    if recipe.task == LM_TASK:
        return lm_plan(recipe)
    steps = [
        *_head(recipe),
        _data(recipe),
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
    return steps + _ship(recipe, student, fp32, upstream, text=recipe.modality == "text")


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
    """The teacher step; a builtin array or language-model teacher is trained in the build, and
    an hf: classifier fine-tuned (teacher.train.fine_tune), on the build's compute (pretrained
    image architectures and other hf: folders are only loaded)."""
    builtin = recipe.teacher.scheme == "builtin" and recipe.modality != "image"
    trained = builtin or (recipe.teacher.scheme == "hf" and recipe.teacher.train.fine_tune)
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
        q.int4_tables and student_cfg.arch == "transformer" and student_cfg.freeze_embeddings
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
    # token ids once per tokenizer and corpus: a transformer student's, the teacher pass's
    if student_cfg.arch == "transformer" or distill.uses_teacher_cache:
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
    called = _called(recipe)  # the teacher's answers stand for it: evaluated, never benchmarked
    models = {"teacher_fp32": "teacher" if called else "export_teacher", "student_fp32": fp32}
    if recipe.quantize.mode != "none":
        roles = {"model": upstream, "data": "data"}
        if upstream != fp32:  # sizes, metric and speed stay relative to the export
            roles["original"] = fp32
        steps.append(Step("quantize", recipe.quantize, roles))
        models[QUANTIZED] = "quantize"
    roles = {**models, "data": "data"}
    if text:  # fidelity on text of another kind than the training data
        steps += [] if called else [_probe(recipe)]
        roles["probe"] = "probe"
    evaluate = _bind(EvaluateStepConfig, recipe.evaluate, task=recipe.task)
    steps.append(Step("evaluate", evaluate, roles))
    if recipe.bench.enabled:  # text variants are timed on real, tokenised test texts
        timed = {k: v for k, v in models.items() if not (called and k == "teacher_fp32")}
        steps.append(
            Step("bench", recipe.bench, {**timed, **({"data": "data"} if text or lm else {})})
        )
    shipped = "quantize" if recipe.package.model == "quantized" and QUANTIZED in models else fp32
    package = _bind(
        PackageStepConfig,
        recipe.package,
        name=recipe.name,
        task=recipe.task,
        description=recipe.description,
        recipe=recipe.to_json(),
        recipe_dir=str(recipe.folder) if recipe.folder else None,
        method=_method(recipe),
    )
    roles = {"model": shipped, "data": "data", "evaluate": "evaluate", "teacher": "teacher"}
    roles |= {"student": student, "provenance": "provenance"}
    if lm:  # its exporter's genai_config.json ships beside the model
        roles["export"] = fp32
    if recipe.bench.enabled:
        roles["bench"] = "bench"
    if lm and recipe.generate.enabled:
        roles["generated"] = "generate"
    steps.append(Step("package", package, roles))
    return steps


def _probe(recipe: Recipe) -> Step:
    source = recipe.evaluate.probe or DEFAULT_PROBE
    return Step("probe", ProbeConfig(source=source, limit=recipe.evaluate.probe_limit))


def _called(recipe: Recipe) -> bool:  # the teacher is only called (an API)
    from packager.sources.teacher import teacher_of

    return not teacher_of(recipe.teacher).local


def api_plan(recipe: Recipe) -> list[Step]:
    """A teacher only called answers the data once (call by call, cached); the student, from
    its own folder, learns the answers, which stand for the teacher in evaluate."""
    task, lm, text = recipe.task, recipe.task == LM_TASK, recipe.modality == "text"
    teacher = _bind(TeacherStepConfig, recipe.teacher, task=task)
    steps = [*_head(recipe), _data(recipe), *([_probe(recipe)] if text else [])]
    steps.append(Step("teacher", teacher, {"data": "data", **({"probe": "probe"} if text else {})}))
    distill = _bind(
        DistillStepConfig,
        recipe.distill,
        task=task,
        losses=recipe.distill_losses,
        compute=compute_of(recipe),
    )
    steps.append(Step("distill", distill, {"teacher": "teacher", "data": "data"}))
    student = "distill"
    if recipe.distill.trim_vocab is not None:  # the word pieces in use
        trim = TrimVocabConfig(min_count=recipe.distill.trim_vocab)
        steps.append(Step("trim_vocab", trim, {"student": "distill", "data": "data"}))
        student = "trim_vocab"
    steps.append(Step("export", recipe.export, {"model": student, "data": "data"}))
    upstream = "export"
    if recipe.optimize.enabled and not lm:
        steps.append(Step("optimize", recipe.optimize, {"model": "export"}))
        upstream = "optimize"
    return steps + _ship(recipe, student, "export", upstream, text=text, lm=lm)


def lm_plan(recipe: Recipe) -> list[Step]:
    """The build DAG of a causal language model (task text-generation)."""
    task, compute = recipe.task, compute_of(recipe)
    steps = [*_head(recipe), _data(recipe), _teacher(recipe)]
    if not recipe.distill.enabled:  # `distill: none`: the teacher itself, exported and shipped
        steps.append(Step("export_teacher", recipe.export, {"model": "teacher", "data": "data"}))
        return steps + _ship(recipe, "teacher", "export_teacher", "export_teacher", lm=True)
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
    weights = recipe.distill_losses or d.loss_weights(recipe.task)
    losses = {k: round(w, 6) for k, w in weights.items()}
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


def sketch_plan(recipe: Recipe) -> list[Step]:
    """`edgepack auto`'s cost of a candidate, no training: data, teacher, the untrained student
    (sketch), its export and its quantization as the recipe says."""
    steps = [
        _data(recipe),
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

"""distill: train the recipe's student on the teacher's outputs (and the labels, when used).

Array data: a cnn/mlp student on the teacher's soft targets, Hinton's KD + CE by default
(packager.nets.train). Text data: a transformer student derived from the teacher (k of its n
layers, optionally narrower feed-forwards), trained on the recipe's weighted losses
(packager.distill.text.trainer). Image data: a cnn with global pooling or the teacher pruned
to a width (packager.distill.image), refused unless smaller than the teacher, trained on the
teacher's logits over augmented training images. The handler is chosen by the teacher
artifact's modality. Each handler hands plain values to its modality's run
(packager.distill.array, text, image, lm.distill) through packager.distill.ddp: in this
process, or on distill.nproc torchrun processes; on cfg.compute's device and precision, with
checkpoints in the step's work folder.
"""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import DistillStepConfig
from packager.errors import RecipeError
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.distill_api import HANDLERS as API_HANDLERS
from packager.stages.distill_jobs import job_for, run_entry

STUDENT_FACTORIES = {"cnn": "packager.nets.array:cnn", "mlp": "packager.nets.array:mlp"}


def _array(teacher: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    factory = STUDENT_FACTORIES.get(cfg.student.arch)
    if factory is None:
        raise RecipeError(f"distill.student.arch = {cfg.student.arch} needs image data")
    data = ctx.inputs["data"]
    losses = cfg.losses.active() if cfg.losses is not None else None
    job = job_for(
        cfg,
        ctx,
        teacher=str(teacher.path),
        teacher_meta=teacher.meta,
        data=str(data.file()),
        data_meta=data.meta,
        factory=factory,
        student=cfg.student.to_json(),
        settings={"losses": losses},
    )
    res = run_entry("packager.distill.array:run", job, cfg, ctx)
    return _array_output(teacher, cfg, ctx, res)


def _array_output(teacher: Artifact, cfg, ctx: StageContext, res: dict) -> Output:
    meta = res["meta"]
    ratio = teacher.meta["params"] / max(1, meta["params"])
    ctx.log(
        f"student {cfg.student.arch}: {meta['params']:,} params ({ratio:.1f}x fewer than the teacher), "
        f"best val accuracy {res['val_accuracy']:.4f} at epoch {res['best_epoch']}/{res['epochs_run']}"
        f"; {_speed(res['compute'])}"
    )
    return Output(
        "torch",
        {
            **meta,
            "arch": cfg.student.arch,
            "size_bytes": (ctx.workdir / meta["file"]).stat().st_size,
            "teacher_params": teacher.meta["params"],
            "compression": ratio,
            **{k: res[k] for k in ("best_epoch", "epochs_run", "val_accuracy", "curve")},
            "compute": res["compute"],
        },
    )


def _speed(c: dict) -> str:
    """The training's compute in words: device, precision, processes, rate."""
    return (
        f"{c['device']} {c['precision']} x{c['processes']}: {c['throughput']:,.1f} "
        f"{c['unit']} over {c['seconds']:.1f} s"
    )


def _text(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    data, tokens = ctx.inputs["data"], ctx.inputs["tokens"]
    if cfg.task == "text-classification" and not data.meta["labels"]:
        raise RecipeError(
            f"text-classification needs labels: data.source {data.meta['source']} has no "
            f"{data.meta.get('label_column')!r} column (data.label_column)"
        )
    info = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")}
    cached = ctx.inputs.get("teacher_outputs")
    int4 = cfg.int4_embedding_block
    extra = {
        "task": cfg.task,
        "weights": cfg.weights,
        "threads": cfg.threads,
        "relation_heads": cfg.relation_heads,
    }
    job = job_for(
        cfg,
        ctx,
        teacher=str(teacher_art.file()),
        info=info,
        data=str(data.path),
        tokens=str(tokens.path),
        pad_id=tokens.meta["pad_id"],
        max_length=data.meta["max_length"],
        stream_batch=data.meta["stream_batch"],
        teacher_outputs=str(cached.file()) if cached else None,
        student=cfg.student.to_json(),
        int4=[int4, cfg.int4_embedding_symmetric] if int4 is not None else None,
        settings=extra,
    )
    res = run_entry("packager.distill.text:run", job, cfg, ctx)
    return _text_output(teacher_art, cfg, ctx, info, res)


def _text_output(teacher_art, cfg, ctx, info, res) -> Output:
    n, tn, ids = res["params"], teacher_art.meta["params"], res["layers_kept"]
    metric = "val_accuracy" if cfg.task == "text-classification" else "val_cosine"
    ctx.log(
        f"student: {len(ids)} of {res['teacher_layers']} layers {ids}"
        f" ({res['init']} init), {n:,} params ({tn / n:.1f}x fewer); "
        f"losses {cfg.weights}; {metric.replace('_', ' ')} {res['curve'][0]['val']:.4f} before, "
        f"{res['best_val']:.4f} at epoch {res['best_epoch']}/{res['epochs_run']}; "
        f"{_speed(res['compute'])}"
    )
    return Output(
        "hf",
        {
            **info,
            "file": "model",
            "task": cfg.task,
            "arch": "transformer",
            "params": n,
            "teacher_params": tn,
            "compression": tn / n,
            "layers_kept": ids,
            "init": res["init"],
            "losses": cfg.weights,
            "best_epoch": res["best_epoch"],
            "epochs_run": res["epochs_run"],
            metric: res["best_val"],
            "curve": res["curve"],
            "compute": res["compute"],
        },
    )


def _image(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    data = ctx.inputs["data"]
    losses = cfg.losses.active() if cfg.losses is not None else None
    job = job_for(
        cfg,
        ctx,
        teacher=str(teacher_art.path),
        teacher_meta=teacher_art.meta,
        data=str(data.file()),
        data_meta=data.meta,
        student=cfg.student.to_json(),
        settings={"losses": losses, "augment": cfg.augment.to_json()},
    )
    res = run_entry("packager.distill.image:run", job, cfg, ctx)
    meta, size = res["meta"], res["size"]
    tn, tm = teacher_art.meta["params"], teacher_art.meta.get("macs") or 0
    ctx.log(
        f"student {cfg.student.arch}: {size['params']:,} params ({tn / size['params']:.1f}x fewer), "
        f"{size['macs'] / 1e6:.1f} M MACs ({tm / max(size['macs'], 1):.1f}x fewer); top-1 "
        f"agreement with the teacher on val {res['start_val_agreement']:.4f} before, "
        f"{res['val_agreement']:.4f} at epoch {res['best_epoch']}/{res['epochs_run']}; "
        f"{_speed(res['compute'])}"
    )
    keep = {k: teacher_art.meta.get(k) for k in ("labels", "output_classes")}
    return Output(
        "torch",
        {
            **meta,
            **keep,
            "macs": size["macs"],
            "modality": "image",
            "arch": cfg.student.arch,
            "size_bytes": (ctx.workdir / meta["file"]).stat().st_size,
            "teacher_params": tn,
            "teacher_macs": tm,
            "compression": tn / size["params"],
            **{
                k: res[k]
                for k in (
                    "losses",
                    "best_epoch",
                    "epochs_run",
                    "val_agreement",
                    "start_val_agreement",
                    "curve",
                    "compute",
                )
            },
        },
    )


def _lm(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    """A causal-LM student (packager.distill.lm.distill), here or under torchrun (nproc > 1)."""
    from packager.stages.distill_api import lm_settings

    topk = ctx.inputs.get("teacher_logits")
    job = job_for(cfg, ctx) | {
        "teacher": str(teacher_art.file()),
        "tokens": str(ctx.inputs["tokens"].path),
        "topk": str(topk.path) if topk else None,
        "out": str(ctx.workdir / "model"),
        "spec": cfg.student.to_json(),
        "settings": lm_settings(cfg, cfg.weights),
        "threads": cfg.threads,
    }
    res = run_entry("packager.distill.lm.distill:run", job, cfg, ctx)
    return _lm_output(teacher_art, cfg, ctx, res)


def _lm_output(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext, res) -> Output:
    from packager.sources.lm import describe_lm, load_causal_lm

    desc = describe_lm(load_causal_lm(ctx.workdir / "model"))
    n, tn = desc["params"], teacher_art.meta["params"]
    ctx.log(
        f"student: layers {res['layers_kept']} of {teacher_art.meta['layers']} ({res['init']}), "
        f"{n:,} params ({tn / n:.1f}x fewer); losses {cfg.weights}; {res['steps']} steps in "
        f"{res['seconds']:.0f} s, on-policy batches {res['on_policy_batches']}; "
        f"{_speed(res['compute'])}"
    )
    keep = ("layers_kept", "init", "steps", "epochs_run", "curve", "on_policy_batches")
    meta = {k: res[k] for k in keep} | {"best_epoch": res["epochs_run"], "nproc": cfg.nproc}
    meta |= {"file": "model", "task": cfg.task, "arch": "causal-lm", "modality": "lm"}
    meta |= {"teacher_params": tn, "compression": tn / n, "losses": cfg.weights, **desc}
    meta |= {"on_policy_fraction": res["on_policy_batches"] / max(1, res["steps"])}
    meta |= {"source": cfg.student.source, "compute": res["compute"]}
    return Output("hf", meta)


def _static(teacher_art: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    """A static-embedding student (packager.distill.text.static): model2vec's table of the teacher,
    then, with student.tune, trained on the teacher's cached outputs."""
    from packager.distill.text import static as S
    from packager.sources.hf import MODEL_DIR, save_tokenizer

    if ctx.inputs["data"].modality != "text":
        raise RecipeError("distill.student.arch static needs a text teacher (hf:) and text data")
    data, folder = ctx.inputs["data"], teacher_art.file()
    student = S.distill_table(folder, cfg.student.sif_coefficient)
    curve = {"best_epoch": 0, "epochs_run": 0, "curve": []}
    classes = len(data.meta["labels"]) if cfg.task == "text-classification" else None
    if cfg.student.tune:
        s = {k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr", "seed", "patience")}
        s |= {"weights": cfg.weights, "temperature": cfg.temperature}
        info = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")}
        tune_data = S.tune_data(
            folder,
            cfg.task,
            info,
            data.path,
            data.meta["max_length"],
            ctx.inputs["teacher_outputs"].file(),
        )
        student, res = S.tune(student, tune_data, s, classes)
        curve = {"best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "curve": res.curve}
    dest = ctx.workdir / MODEL_DIR
    dest.mkdir()
    student.save(dest)
    save_tokenizer(folder, dest)
    n, tn = (
        student.table.size + (0 if student.head is None else student.head.size),
        teacher_art.meta["params"],
    )
    metric = "val_accuracy" if classes else "val_cosine"
    best = (
        curve["curve"][-1]["val"] if not curve["curve"] else max(c["val"] for c in curve["curve"])
    )
    ctx.log(
        f"static student: {student.table.shape[0]:,} x {student.table.shape[1]} table, {n:,} params "
        f"({tn / n:.1f}x fewer); {metric.replace('_', ' ')} "
        + (
            f"{curve['curve'][0]['val']:.4f} untuned, {best:.4f} at epoch {curve['best_epoch']}"
            if curve["curve"]
            else "untuned"
        )
    )
    meta = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")} | {"pooling": "mean"}
    meta |= {"file": MODEL_DIR, "task": cfg.task, "arch": "static", "modality": "text"}
    meta |= {"params": n, "teacher_params": tn, "compression": tn / n, "losses": cfg.weights}
    return Output("static", {**meta, **curve, **({metric: best} if curve["curve"] else {})})


_HANDLERS = Handlers("distill", array=_array, text=_text, image=_image, lm=_lm)


@register_stage(DistillStepConfig, name="distill", version=7)
def distill(teacher: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    if teacher.kind == "api":  # a teacher only called: its answers are what the student learns
        return API_HANDLERS(ctx.inputs["data"].modality)(teacher, cfg, ctx)
    if cfg.student.arch == "static":  # a table, not layers: its own handler for text
        return _static(teacher, cfg, ctx)
    return _HANDLERS(ctx.inputs["data"].modality)(teacher, cfg, ctx)

"""distill: train the recipe's student on the teacher's outputs (and the labels, when used).

Array data: a cnn/mlp student on the teacher's soft targets, Hinton's KD + CE by default
(packager.nets.train). Text data: a transformer student derived from the teacher (k of its n
layers, optionally narrower feed-forwards), trained on the recipe's weighted losses
(packager.distill.text_trainer). Image data: a cnn with global pooling or the teacher pruned
to a width (packager.distill.images), refused unless smaller than the teacher, trained on the
teacher's logits over augmented training images. The handler is chosen by the teacher
artifact's modality. Each handler hands plain values to its modality's run
(packager.distill.array, text, images, lm_distill) through packager.distill.ddp: in this
process, or on distill.nproc torchrun processes; on cfg.compute's device and precision, with
checkpoints in the step's work folder.
"""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import DistillStepConfig
from packager.errors import RecipeError
from packager.stage import StageContext, register_stage

STUDENT_FACTORIES = {"cnn": "packager.nets.arch:cnn", "mlp": "packager.nets.arch:mlp"}


def _job(cfg: DistillStepConfig, ctx: StageContext, **fields) -> dict:
    """What every modality's run reads: plain values (packager.distill.ddp runs it here or on
    cfg.nproc torchrun processes), checkpoints in the step's work folder."""
    keys = "epochs batch_size lr weight_decay temperature alpha patience seed allow_larger warmup"
    settings = {k: getattr(cfg, k) for k in keys.split()}
    job = {"stage": ctx.step, **cfg.compute.launch(), "out": str(ctx.workdir)}
    job |= {"settings": settings, "work": str(ctx.scratch) if ctx.scratch else None}
    job["settings"] |= fields.pop("settings", {})
    return job | fields


def _run(entry: str, job: dict, cfg: DistillStepConfig, ctx: StageContext) -> dict:
    from packager.distill.ddp import run_job

    return run_job(entry, job, cfg.nproc, ctx.workdir, ctx.reporter)


def _array(teacher: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    factory = STUDENT_FACTORIES.get(cfg.student.arch)
    if factory is None:
        raise RecipeError(f"distill.student.arch = {cfg.student.arch} needs image data")
    data = ctx.inputs["data"]
    losses = cfg.losses.active() if cfg.losses is not None else None
    job = _job(
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
    res = _run("packager.distill.array:run", job, cfg, ctx)
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
    job = _job(
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
    res = _run("packager.distill.text:run", job, cfg, ctx)
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
    job = _job(
        cfg,
        ctx,
        teacher=str(teacher_art.path),
        teacher_meta=teacher_art.meta,
        data=str(data.file()),
        data_meta=data.meta,
        student=cfg.student.to_json(),
        settings={"losses": losses, "augment": cfg.augment.to_json()},
    )
    res = _run("packager.distill.images:run", job, cfg, ctx)
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
    """A causal-LM student (packager.distill.lm_distill), here or under torchrun (nproc > 1)."""
    topk = ctx.inputs.get("teacher_logits")
    s = {"weights": cfg.weights, "temperature": cfg.temperature, "jsd_beta": cfg.jsd_beta}
    s |= {"on_policy": cfg.on_policy, "on_policy_tokens": cfg.on_policy_tokens, "lr": cfg.lr}
    s |= {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay}
    s |= {"warmup": cfg.warmup, "seed": cfg.seed, "max_steps": cfg.max_steps}
    job = _job(cfg, ctx) | {
        "teacher": str(teacher_art.file()),
        "tokens": str(ctx.inputs["tokens"].path),
        "topk": str(topk.path) if topk else None,
        "out": str(ctx.workdir / "model"),
        "spec": cfg.student.to_json(),
        "settings": s,
        "threads": cfg.threads,
    }
    res = _run("packager.distill.lm_distill:run", job, cfg, ctx)
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


_HANDLERS = {"array": _array, "text": _text, "image": _image, "lm": _lm}


@register_stage(DistillStepConfig, name="distill", version=6)
def distill(teacher: Artifact, cfg: DistillStepConfig, ctx: StageContext) -> Output:
    return _HANDLERS[teacher.modality](teacher, cfg, ctx)

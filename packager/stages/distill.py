"""distill: train the recipe's student on the teacher's soft targets plus the labels."""

from __future__ import annotations

from packager.recipe import DistillConfig
from packager.stage import Artifact, Output, StageContext, register_stage
from packager.stages.data import splits_of

STUDENT_FACTORIES = {"cnn": "packager.distill.arch:cnn", "mlp": "packager.distill.arch:mlp"}


@register_stage(DistillConfig)
def distill(teacher: Artifact, cfg: DistillConfig, ctx: StageContext) -> Output:
    if cfg.student.arch == "transformer":
        from packager.distill.text_trainer import distill_text

        return distill_text(teacher, cfg, ctx)
    import torch

    from packager.distill.arch import build, load_torch, save_torch
    from packager.distill.losses import kd_loss
    from packager.distill.trainer import fit, predict_logits

    splits = splits_of(ctx.inputs["data"])
    x_train = splits.model_input("train")
    teacher_model = load_torch(teacher.path, teacher.meta)
    # The teacher is frozen: its logits on the training set are computed once, not per epoch.
    soft = predict_logits(teacher_model, torch.from_numpy(x_train))[:, : splits.num_classes]

    kwargs = {
        "in_shape": list(splits.preprocessing.sample_shape),
        "num_classes": splits.num_classes,
        "hidden": cfg.student.hidden,
    }
    if cfg.student.arch == "cnn":
        kwargs["channels"] = list(cfg.student.channels)
    factory = STUDENT_FACTORIES[cfg.student.arch]
    torch.manual_seed(cfg.seed)
    student = build(factory, kwargs)

    w = cfg.losses.active() if cfg.losses is not None else None

    def loss_fn(logits, labels, idx):
        if w is None:  # the classic Hinton mix, from alpha
            return kd_loss(logits, soft[idx], labels, cfg.temperature, cfg.alpha)
        kd = kd_loss(logits, soft[idx], None, cfg.temperature, 1.0) if "logits_kd" in w else 0.0
        ce = torch.nn.functional.cross_entropy(logits, labels) if "label_ce" in w else 0.0
        return w.get("logits_kd", 0.0) * kd + w.get("label_ce", 0.0) * ce

    res = fit(
        student,
        loss_fn,
        x_train,
        splits.y["train"],
        splits.model_input("val"),
        splits.y["val"],
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        weight_decay=cfg.weight_decay,
        patience=cfg.patience,
        reporter=ctx.reporter,
        description="distill",
    )
    meta = save_torch(student, ctx.workdir, factory, kwargs)
    ratio = teacher.meta["params"] / max(1, meta["params"])
    ctx.log(
        f"student {cfg.student.arch}: {meta['params']:,} params ({ratio:.1f}x fewer than the teacher), "
        f"best val accuracy {res.best_val_accuracy:.4f} at epoch {res.best_epoch}/{res.epochs_run}"
    )
    return Output(
        "torch",
        {
            **meta,
            "arch": cfg.student.arch,
            "size_bytes": (ctx.workdir / meta["file"]).stat().st_size,
            "teacher_params": teacher.meta["params"],
            "compression": ratio,
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
            "val_accuracy": res.best_val_accuracy,
            "curve": res.curve,
        },
    )

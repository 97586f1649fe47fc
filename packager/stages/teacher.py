"""teacher: build or train the teacher once; cached like any other stage."""

from __future__ import annotations

from packager.recipe import TeacherConfig
from packager.stage import Artifact, Output, StageContext, register_stage
from packager.stages.data import splits_of


@register_stage(TeacherConfig)
def teacher(data: Artifact, cfg: TeacherConfig, ctx: StageContext) -> Output:
    if cfg.source.startswith("hf:"):
        from packager.sources.hf import teacher_stage

        return teacher_stage(data, cfg, ctx)
    import torch

    from packager.distill.arch import save_torch
    from packager.distill.trainer import accuracy
    from packager.sources.teachers import make_teacher

    splits = splits_of(data)
    t = make_teacher(cfg, splits, ctx)
    meta = save_torch(t.model, ctx.workdir, t.factory, t.kwargs)
    val = accuracy(
        t.model, torch.from_numpy(splits.model_input("val")), torch.from_numpy(splits.y["val"])
    )
    ctx.log(f"{cfg.source}: {meta['params']:,} params, val accuracy {val:.4f}")
    return Output("torch", {**meta, "source": cfg.source, "val_accuracy": val, **t.info})

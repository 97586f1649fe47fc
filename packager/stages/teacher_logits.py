"""teacher_logits: the teacher's top-k logits per token over the training sequences, cached
once per teacher and corpus (packager.distill.lm.topk; on the build's device and precision,
sharded over compute.nproc processes), so every distillation epoch (and every
rebuild with another student or learning rate) reads them instead of running the teacher.

k costs k x (2 + 2) bytes a token (float16 value + uint16 id; 4-byte ids past a 65,535-word
vocabulary): k = 64 is 256 B a token, against vocab x 4 B for full float32 logits; what it
saves each later epoch is the teacher's forward pass, timed here and logged."""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import TeacherLogitsConfig
from packager.stage import StageContext, register_stage


@register_stage(TeacherLogitsConfig, version=2)
def teacher_logits(teacher: Artifact, cfg: TeacherLogitsConfig, ctx: StageContext) -> Output:
    from packager.distill.ddp import run_job

    job = {
        "stage": ctx.step,
        **cfg.compute.launch(),
        "teacher": str(teacher.file()),
        "tokens": str(ctx.inputs["tokens"].path),
        "k": cfg.k,
        "limit": cfg.limit,
        "batch": cfg.batch,
        "out": str(ctx.workdir),
    }
    stats = run_job(
        "packager.distill.lm.topk:run", job, cfg.compute.nproc, ctx.workdir, ctx.reporter
    )
    ctx.log(
        f"top-{cfg.k} logits of {stats['tokens']:,} tokens: {stats['bytes_per_token']} B a token "
        f"(full fp32 logits: {stats['full_bytes_per_token']:,} B), {stats['bytes'] / 1e6:.1f} MB; "
        f"saves {stats['teacher_seconds']:.0f} s of teacher forward per later epoch"
    )
    return Output("teacher_logits", {"file": "values.npy", **stats})

"""teacher_outputs: the teacher's head output (pooled sentence embedding, or logits) on every
training text, computed once and cached like any step, so distillation epochs after the first
(and rebuilds with another student, learning rate or epoch count) never rerun the teacher.

It costs `width x 2` bytes a text (float16; 768 B for MiniLM's 384-d embedding), whatever the
text's length: DistillKit's offline distillation, for the losses that compare the teacher's
output (embedding_cosine, embedding_mse, logits_kd). Token-level losses still need the teacher
at every step. It reads the pre-tokenized split (the tokenize step) and runs on the build's
device and precision, sharded over compute.nproc processes (packager.distill.teacher_outputs):
each text's output is computed once, by one rank, in the batch one process would use.
"""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import TeacherOutputsConfig
from packager.stage import StageContext, register_stage


@register_stage(TeacherOutputsConfig, version=2)
def teacher_outputs(teacher: Artifact, cfg: TeacherOutputsConfig, ctx: StageContext) -> Output:
    from packager.distill.ddp import run_job

    tokens = ctx.inputs["tokens"]
    info = {k: teacher.meta.get(k) for k in ("pooling", "normalize")}
    job = {
        "stage": ctx.step,
        **cfg.compute.launch(),
        "teacher": str(teacher.file()),
        "task": cfg.task,
        "info": info,
        "tokens": str(tokens.path),
        "pad_id": tokens.meta["pad_id"],
        "batch": cfg.batch,
        "out": str(ctx.workdir / "outputs.npy"),
    }
    res = run_job(
        "packager.distill.teacher_outputs:run", job, cfg.compute.nproc, ctx.workdir, ctx.reporter
    )
    width = res["width"]
    ctx.log(
        f"{res['texts']} training texts x {width} values, {width * 2} bytes a text "
        f"({res['texts'] * width * 2 / 1e6:.1f} MB), {res['seconds']:.0f} s of teacher forward "
        f"saved per later epoch ({res['device']} {res['precision']} x{res['processes']}, "
        f"{res['throughput']:,.1f} texts/s)"
    )
    return Output(
        "teacher_outputs",
        {"file": "outputs.npy", "bytes_per_text": width * 2, **res},
    )

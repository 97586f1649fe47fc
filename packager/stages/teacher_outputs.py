"""teacher_outputs: the teacher's head output (pooled sentence embedding, or logits) on every
training text, computed once and cached like any step, so distillation epochs after the first
(and rebuilds with another student, learning rate or epoch count) never rerun the teacher.

It costs `width x 2` bytes a text (float16; 768 B for MiniLM's 384-d embedding), whatever the
text's length: DistillKit's offline distillation, for the losses that compare the teacher's
output (embedding_cosine, embedding_mse, logits_kd). Token-level losses still need the teacher
at every step.
"""

from __future__ import annotations

import time

import numpy as np

from packager.artifact import Artifact, Output
from packager.config import TeacherOutputsConfig
from packager.stage import StageContext, register_stage


@register_stage(TeacherOutputsConfig)
def teacher_outputs(teacher: Artifact, cfg: TeacherOutputsConfig, ctx: StageContext) -> Output:
    from packager.data.text import load_tokenizer, stream_split
    from packager.nets.hf import predict
    from packager.sources.hf import load_model

    data = ctx.inputs["data"]
    folder = teacher.file()
    model = load_model(folder, cfg.task)
    tok = load_tokenizer(folder, cfg.max_length)
    info = {k: teacher.meta.get(k) for k in ("pooling", "normalize")}
    n = data.meta["sizes"]["train"]
    t0, rows, out = time.perf_counter(), 0, None
    with ctx.reporter.track("teacher outputs", n) as advance:
        for texts, _ in stream_split(data.path, "train", data.meta["stream_batch"]):
            # predict: the head the losses compare (un-normalised pooled output, or logits)
            got = predict(model, tok, texts, cfg.task, {**info, "normalize": False}, cfg.batch)
            if out is None:
                out = np.lib.format.open_memmap(
                    ctx.workdir / "outputs.npy",
                    mode="w+",
                    dtype=np.float16,
                    shape=(n, got.shape[1]),
                )
            out[rows : rows + len(got)] = got.astype(np.float16)
            rows += len(got)
            advance(len(got))
    out.flush()
    width = out.shape[1]
    seconds = time.perf_counter() - t0
    ctx.log(
        f"{rows} training texts x {width} values, {width * 2} bytes a text "
        f"({out.nbytes / 1e6:.1f} MB), {seconds:.0f} s of teacher forward saved per later epoch"
    )
    return Output(
        "teacher_outputs",
        {
            "file": "outputs.npy",
            "texts": rows,
            "width": width,
            "bytes_per_text": width * 2,
            "seconds": seconds,
        },
    )

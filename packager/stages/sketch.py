"""sketch: a candidate student as distill would build it, untrained, so that edgepack auto can
cost its graph (latency, size, memory) before spending any training on it. Its output has the
kind and metadata of distill's, so export and quantize take it unchanged.

Array data: the cnn/mlp factory distill uses, seeded. Text: k of the teacher's layers (and the
strongest feed-forward neurons) copied by the same derivation distill starts from.
"""

from __future__ import annotations

from packager.artifact import Artifact, Output
from packager.config import SketchConfig
from packager.errors import RecipeError
from packager.stage import Handlers, StageContext, register_stage
from packager.stages.data import splits_of
from packager.stages.distill import STUDENT_FACTORIES


def _array(teacher: Artifact, cfg: SketchConfig, ctx: StageContext) -> Output:
    import torch

    from packager.distill.array import array_student_kwargs
    from packager.nets.array import build, load_torch, save_torch

    splits = splits_of(ctx.inputs["data"])
    with torch.no_grad():  # the teacher's output width, as distill reads it
        one = torch.from_numpy(splits.model_input("train")[:1])
        width = int(load_torch(teacher.path, teacher.meta)(one).shape[1])
    kwargs = array_student_kwargs(splits, cfg.student.to_json(), width)
    factory = STUDENT_FACTORIES[cfg.student.arch]
    torch.manual_seed(0)
    student = build(factory, kwargs)
    meta = save_torch(student.eval(), ctx.workdir, factory, kwargs)
    ctx.log(f"{cfg.student.arch} student, untrained: {meta['params']:,} params")
    return Output("torch", {**meta, "arch": cfg.student.arch, "trained": False})


def _text(teacher_art: Artifact, cfg: SketchConfig, ctx: StageContext) -> Output:
    import torch

    from packager.data.text import load_tokenizer, stream_split
    from packager.distill.text.transformer import derive_student
    from packager.nets.text import feeds, input_names
    from packager.sources.hf import MODEL_DIR, load_model, save_tokenizer

    data, folder = ctx.inputs["data"], teacher_art.file()
    torch.manual_seed(0)
    teacher = load_model(folder, cfg.task)
    tok = load_tokenizer(folder, data.meta["max_length"])
    sample_texts, _ = next(stream_split(data.path, "train", 128), ([], []))
    student, ids = derive_student(
        teacher, cfg.student, feeds(tok, sample_texts, input_names(teacher))
    )
    dest = ctx.workdir / MODEL_DIR
    student.save_pretrained(str(dest), safe_serialization=True)
    save_tokenizer(folder, dest)
    n = sum(p.numel() for p in student.parameters())
    ctx.log(f"transformer student, untrained: layers {ids}, {n:,} params")
    info = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")}
    meta = {**info, "file": MODEL_DIR, "task": cfg.task, "arch": "transformer", "params": n}
    return Output("hf", {**meta, "layers_kept": ids, "trained": False})


_NOT_SEARCHED = "edgepack auto searches array and text students; {} students are not searched yet"
_HANDLERS = Handlers(
    "sketch",
    refused={
        "image": _NOT_SEARCHED.format("image (pruned CNN)"),
        "lm": _NOT_SEARCHED.format("causal language model"),
    },
    array=_array,
    text=_text,
)


@register_stage(SketchConfig, version=2)
def sketch(teacher: Artifact, cfg: SketchConfig, ctx: StageContext) -> Output:
    if cfg.student.arch == "pruned":
        raise RecipeError(_NOT_SEARCHED.format("pruned"))
    return _HANDLERS(ctx.inputs["data"].modality)(teacher, cfg, ctx)

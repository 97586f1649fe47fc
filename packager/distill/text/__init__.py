"""A text student's distillation from plain arguments (one process, or one rank of a torchrun
job: packager.distill.ddp): a transformer derived from the teacher (k of its n layers,
optionally narrower feed-forwards), trained on the recipe's weighted losses over the
pre-tokenized training split (packager.distill.text.trainer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.errors import RecipeError
from packager.nets.loop import Run, compute_record


def run(job: dict[str, Any], run: Run, reporter) -> dict[str, Any]:
    """`job`: teacher (a transformers folder), info (pooling, normalize), data (the split
    folder), tokens (the tokenize step's folder) and pad_id, teacher_outputs (or None),
    student (its config JSON), settings, int4 (block, symmetric, or None), out."""
    from packager.config import TransformerStudentConfig
    from packager.data.text import load_tokenizer, stream_split
    from packager.data.tokens import Tokens
    from packager.distill.text import trainer as T
    from packager.distill.text.transformer import derive_student, init_kind, matched_states
    from packager.nets.text import feeds, input_names
    from packager.sources.hf import MODEL_DIR, load_model, save_tokenizer

    s, folder, data = job["settings"], Path(job["teacher"]), Path(job["data"])
    torch.manual_seed(s["seed"])  # the student's init, its projections and dropout: one stream
    teacher = load_model(folder, s["task"], eager_attention="attention_kl" in s["weights"])
    for p in teacher.parameters():
        p.requires_grad = False
    tok = load_tokenizer(folder, job["max_length"])
    names = input_names(teacher)  # a derived student takes the same inputs
    sample_texts, _ = next(stream_split(data, "train", 128), ([], []))
    spec = TransformerStudentConfig.model_validate(job["student"])
    student, ids = derive_student(teacher, spec, feeds(tok, sample_texts, names))
    _check_width(s["task"], student, teacher)
    if spec.freeze_embeddings:
        T.freeze_embeddings(student)
    if job.get("int4") is not None:  # the frozen table as its int4 blocks will be
        _round_table(student, *job["int4"])
    text = T.TextData(data, Tokens(Path(job["tokens"]), job["pad_id"]), job["stream_batch"])
    if job.get("teacher_outputs"):  # a memory map: the rows a batch needs are read
        text.teacher_outputs = np.load(job["teacher_outputs"], mmap_mode="r")
    info = job["info"]
    res = T.train(teacher, student, matched_states(ids), tok, names, text, s, info, reporter, run)
    if run.writer:
        dest = Path(job["out"]) / MODEL_DIR
        student.cpu().save_pretrained(str(dest), safe_serialization=True)
        save_tokenizer(folder, dest)
    return {
        "params": sum(p.numel() for p in student.parameters()),
        "layers_kept": ids,
        "teacher_layers": teacher.config.num_hidden_layers,
        "init": init_kind(teacher.config, spec),
        "best_val": res.best_val,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "curve": res.curve,
        "compute": compute_record(run, res, "texts/s"),
    }


def _check_width(task: str, student, teacher) -> None:
    if task == "feature-extraction" and student.config.hidden_size != teacher.config.hidden_size:
        raise RecipeError(
            f"distill.student.hidden_size {student.config.hidden_size}: a feature-extraction "
            f"student must keep the teacher's width ({teacher.config.hidden_size}), since its "
            "embeddings are compared with (and replace) the teacher's; use fewer layers or a "
            "narrower intermediate_size instead"
        )


def _round_table(student, block: int, symmetric: bool) -> None:
    from packager.onnx_utils import int4_round_trip

    table = student.get_input_embeddings().weight
    rounded = int4_round_trip(table.detach().numpy(), block, symmetric)
    with torch.no_grad():
        table.copy_(torch.from_numpy(rounded))

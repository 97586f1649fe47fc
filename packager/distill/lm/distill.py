"""One causal-LM distillation run, from plain arguments: load the teacher, derive (or load) the
student, train on the packed training sequences (the tokenize step's), save. The distill stage runs it through packager.distill.ddp:
in its own process, or on every rank of a torchrun job; both write the same folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.config import CausalStudentConfig
from packager.data.lm import row_text, rows
from packager.data.tokens import sequences
from packager.distill.lm.student import derive_causal_student
from packager.distill.lm.trainer import LMTrainSettings, train_lm
from packager.errors import RecipeError
from packager.nets.loop import LOCAL, Run, compute_record
from packager.progress import SilentReporter
from packager.sources.lm import load_causal_lm, save_lm


def training_texts(data: Path, generated: Path | None) -> Iterator[str]:
    """What the student learns from: the teacher's completions first (sequence-level KD), when
    there are some, then the data's training text (prompt + completion rows as one text)."""
    if generated is not None:
        with generated.open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                yield row["prompt"] + row["completion"]
    for r in rows(data, "train"):
        yield row_text(r)


def batch_stream(seqs: np.ndarray, batch: int, limit: int | None = None):
    """A function giving (first sequence index, (batch, length) int64 ids) per full global
    batch of the packed sequences `seqs` (the tokenize step's, memory-mapped)."""
    n = len(seqs) if limit is None else min(limit, len(seqs))

    def batches():
        for start in range(0, n - batch + 1, batch):
            yield start, torch.from_numpy(np.asarray(seqs[start : start + batch], np.int64))

    return batches


def make_student(teacher, spec: CausalStudentConfig, sample: torch.Tensor):
    if spec.source:
        from packager.sources import hf

        folder = hf.resolve(spec.source)
        student = load_causal_lm(folder)
        if teacher is not None and student.config.vocab_size != teacher.config.vocab_size:
            raise RecipeError(
                f"distill.student.source {spec.source}: vocabulary {student.config.vocab_size} "
                f"is not the teacher's {teacher.config.vocab_size}; a student folder must share "
                "the teacher's tokenizer"
            )
        return student, [], "given"
    return derive_causal_student(teacher, spec, sample)


def run(job: dict[str, Any], run: Run = LOCAL, reporter=None) -> dict[str, Any]:
    """`job`: teacher (None for a teacher only called: student_folder then), tokens (a folder of
    packed sequences: the tokenize step's, or an API teacher's), topk, out (folders), spec
    (student config JSON), settings (LMTrainSettings fields), threads, sample_rows."""
    torch.set_num_threads(job.get("threads") or 1)
    teacher = None  # an API teacher: only its answers (completions, top-k) are here
    if job.get("teacher"):
        teacher_dir = Path(job["teacher"])
        teacher = load_causal_lm(teacher_dir)
        for p in teacher.parameters():
            p.requires_grad = False
    else:
        teacher_dir = Path(job["student_folder"])  # the tokenizer is the student's own
    s = LMTrainSettings(**job["settings"])
    if s.batch_size % run.world:
        raise RecipeError(f"distill.batch_size {s.batch_size} must divide by nproc {run.world}")
    seqs = sequences(Path(job["tokens"]))
    length = seqs.shape[1]
    batches = batch_stream(seqs, s.batch_size)
    first = next(batches(), None)
    if first is None:
        raise RecipeError(
            f"distill: fewer than {s.batch_size} training sequences of {length} tokens"
        )
    torch.manual_seed(s.seed)  # the student's init (pruning ranks are deterministic)
    spec = CausalStudentConfig.model_validate(job["spec"])
    student, ids, init = make_student(teacher, spec, first[1][: job.get("sample_rows", 8)])
    per_epoch = sum(1 for _ in batches())
    topk = None
    if job.get("topk"):
        folder = Path(job["topk"])
        names = ["values.npy", "indices.npy", "present.npy"]
        topk = tuple(np.load(folder / n, mmap_mode="r") for n in names if (folder / n).is_file())
    total = min(per_epoch * s.epochs, s.max_steps or 1 << 62)
    with (reporter or SilentReporter()).track("distill", total) as adv:
        res = train_lm(teacher, student, batches, per_epoch, s, topk, run, adv)
    out = {**asdict(res), "layers_kept": ids, "init": init, "steps_per_epoch": per_epoch}
    out["compute"] = compute_record(run, res.loop, "tokens/s")
    del out["loop"]
    if run.writer:
        save_lm(student.cpu(), teacher_dir, Path(job["out"]))
    return out

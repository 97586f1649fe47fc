"""Distilling a causal-LM student: weighted token-level losses over packed training sequences
(the data's text, the teacher's own generations for sequence-level KD, or both), an optional
on-policy fraction (the student samples continuations, the teacher scores them: GKD), and the
teacher either live or replayed from its cached top-k logits.

One process, or one rank of a torchrun DDP job (packager.nets.loop): every rank reads the same
global batch of `batch_size` sequences and trains on its own rows (rank, rank + world, ...),
DDP averages the gradients, so the update is the single-process one up to float summation
order. Each batch's on-policy draw is seeded by (seed, epoch, its first sequence): the same on
every rank and after a resume.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from packager.distill.lm import losses as L
from packager.errors import RecipeError
from packager.nets.loop import LOCAL, LoopResult, Run, Trainer, loop
from packager.sources.builtin_lm import lr_at

LIVE_LOSSES = ("reverse_kl", "jsd")  # need the teacher's whole distribution at every step


@dataclass
class LMTrainSettings:
    """The distill: fields the loop reads (plain values: the stage builds it from its config)."""

    weights: dict[str, float]
    temperature: float = 1.0
    jsd_beta: float = 0.5
    on_policy: float = 0.0
    on_policy_tokens: int = 24
    epochs: int = 1
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    seed: int = 0
    max_steps: int | None = None


@dataclass
class LMTrainResult:
    steps: int
    epochs_run: int
    seconds: float
    curve: list[dict[str, float]] = field(default_factory=list)
    on_policy_batches: int = 0
    loop: LoopResult | None = None


def loss_terms(
    s: LMTrainSettings, student_logits, ids, teacher_logits=None, topk=None, mask=None, data=True
) -> dict[str, torch.Tensor]:
    """Each weighted loss on one batch (CE only on data tokens, not on the student's samples)."""
    w, T = s.weights, s.temperature
    out: dict[str, torch.Tensor] = {}
    if "logits_kd" in w:
        out["logits_kd"] = (
            # A third array marks the positions the teacher scored (an API's completions only).
            L.topk_forward_kl(
                student_logits, topk[0], topk[1], T, topk[2] if len(topk) > 2 else mask
            )
            if topk is not None
            else L.forward_kl(student_logits, teacher_logits, T, mask)
        )
    if "reverse_kl" in w:
        out["reverse_kl"] = L.reverse_kl(student_logits, teacher_logits, T, mask)
    if "jsd" in w:
        out["jsd"] = L.jsd(student_logits, teacher_logits, s.jsd_beta, T, mask)
    if "label_ce" in w and data:
        out["label_ce"] = L.ce(student_logits, ids, mask)
    return out


def _sample_on_policy(model, ids: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The student continues the first half of each row by `n` sampled tokens; the mask marks
    the sampled positions (the ones the teacher scores)."""
    prompt = ids[:, : max(1, ids.shape[1] // 2)]
    with torch.no_grad():
        out = model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=True,
            top_k=0,
            pad_token_id=0,
        )
    mask = torch.zeros_like(out)
    mask[:, prompt.shape[1] :] = 1
    return out, mask


def train_lm(
    teacher,
    student,
    batches: Callable[[], Iterator[tuple[int, torch.Tensor]]],
    steps_per_epoch: int,
    s: LMTrainSettings,
    topk: Any = None,
    run: Run = LOCAL,
    advance: Callable[..., None] = lambda *a, **k: None,
) -> LMTrainResult:
    """Train `student` in place (packager.nets.loop: device, precision, DDP, checkpoints).
    `batches()` yields (first sequence index, global batch ids); `topk` (values, indices
    memmaps over the sequences) replaces the live teacher for KD."""
    total = s.epochs * steps_per_epoch
    if s.max_steps:
        total = min(total, s.max_steps)
    if total < 1:
        raise RecipeError("distill: no full training batch (more text, or a smaller batch_size)")
    torch.manual_seed(s.seed)
    dev = run.compute.device
    if teacher is not None:
        teacher.to(dev)
    opt = torch.optim.AdamW(student.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_at(k, total, s.lr, s.warmup) / s.lr)

    def epoch_batches(epoch: int, start: int):
        for first, ids in itertools.islice(batches(), start, None):
            yield epoch, first, ids

    def loss_fn(batch):
        epoch, first, ids = batch
        rows = torch.arange(first, first + len(ids))[run.rank :: run.world]
        mine = ids[run.rank :: run.world].to(dev)
        # The on-policy draw of a batch: the same on every rank and after a resume.
        rng = np.random.default_rng([s.seed, epoch, first])
        loss = _step(student, teacher, mine, rows, s, topk, rng, trainer)
        return loss, mine.numel(), ids.numel()

    trainer = Trainer({"student": student}, loss_fn, opt, run, sched=sched, clip=1.0)
    trainer.extra["on_policy_batches"] = 0
    res = loop(
        trainer,
        epoch_batches,
        epochs=s.epochs,
        steps_per_epoch=steps_per_epoch,
        max_steps=total,
        advance=advance,
        unit="tokens/s",
    )
    return LMTrainResult(
        res.steps, res.epochs_run, res.seconds, res.curve, trainer.extra["on_policy_batches"], res
    )


def _step(student, teacher, ids, rows, s: LMTrainSettings, topk, rng, trainer):
    mask, data = None, True
    if s.on_policy > 0 and rng.random() < s.on_policy:
        student.eval()
        ids, mask = _sample_on_policy(student, ids, s.on_policy_tokens)
        student.train()
        data = False
        trainer.extra["on_policy_batches"] += 1
    teacher_logits, cached = None, None
    if topk is not None and data:
        r = rows.numpy()
        cached = tuple(torch.from_numpy(np.asarray(a[r])).to(ids.device) for a in topk)
    elif teacher is not None:  # None: a teacher only called, whose top-k (if any) is cached
        with torch.no_grad():
            teacher_logits = teacher(input_ids=ids).logits.float()
    logits = student(input_ids=ids).logits.float()
    parts = loss_terms(s, logits, ids, teacher_logits, cached, mask, data)
    return sum(s.weights[k] * v for k, v in parts.items())

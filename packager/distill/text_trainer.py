"""Distil a transformer student from a Hugging Face teacher on streamed, tokenised text.

Each step runs the frozen teacher and the student on the same batch and adds the recipe's
weighted losses. Batches are cut from `stream_batch`-row chunks sorted by length (so a batch
pads little: on a CPU, padding is most of the cost of short texts) and shuffled with a seeded
order per epoch. The best student on the validation split (accuracy, or mean cosine to the
teacher for embeddings) is kept.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.config import DistillStepConfig
from packager.data.text import read_split, stream_split
from packager.distill import text_losses as L
from packager.nets.hf import attention_projections, feeds, forward, predict
from packager.nets.train import torch_threads
from packager.progress import Reporter

_SMALL = 5_000_000  # parameters: below this, one thread beats thread start-up costs


@dataclass
class TextData:
    """The data a text distillation reads: a folder of train/val .jsonl splits, and the
    teacher's outputs on the training texts when they were cached (teacher_outputs)."""

    folder: Path
    train_size: int
    stream_batch: int
    teacher_outputs: np.ndarray | None = None  # (train_size, width), row i: training text i


@dataclass
class TextTrainResult:
    best_val: float
    best_epoch: int
    epochs_run: int
    curve: list[dict[str, float]] = field(default_factory=list)


def batches(data: TextData, batch: int, epoch: int, seed: int) -> Iterator[tuple[list, list, list]]:
    """Length-bucketed training batches (texts, labels, row numbers in the split), streamed
    chunk by chunk, in a seeded order."""
    rng = random.Random(seed * 1_000_003 + epoch)
    start = 0
    for texts, labels in stream_split(data.folder, "train", data.stream_batch):
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), rng.random()))
        cuts = [order[i : i + batch] for i in range(0, len(order), batch)]
        rng.shuffle(cuts)
        for idx in cuts:
            yield [texts[i] for i in idx], [labels[i] for i in idx], [start + i for i in idx]
        start += len(texts)


def _val_metric(task, student, tok, val_texts, val_y, target, info) -> float:
    got = predict(student, tok, val_texts, task, info)
    if task == "text-classification":
        return float((got.argmax(-1) == val_y).mean())
    a = got / np.linalg.norm(got, axis=1, keepdims=True).clip(1e-12)
    b = target / np.linalg.norm(target, axis=1, keepdims=True).clip(1e-12)
    return float((a * b).sum(1).mean())


def freeze_embeddings(student) -> None:
    emb = getattr(student.base_model, "embeddings", None) or student.get_input_embeddings()
    for p in emb.parameters():
        p.requires_grad = False


def train(
    teacher,
    student,
    pairs: list[int],
    tok,
    names: list[str],
    data: TextData,
    cfg: DistillStepConfig,
    info: dict[str, Any],
    reporter: Reporter,
    val_target: np.ndarray | None = None,
) -> TextTrainResult:
    """Train `student` in place on `teacher`'s outputs; it ends with its best-on-val weights.
    `pairs` maps each student hidden state to the teacher's it learns (hidden_mse). Seed torch
    before deriving the student: its init, the projections and dropout draw from one stream.
    A teacher you can only call is None: its answers are the cached outputs (embeddings) or the
    data's labels (classification), and `val_target` its vectors for the validation texts."""
    width = teacher.config.hidden_size if teacher is not None else student.config.hidden_size
    proj = L.Projections(len(pairs), student.config.hidden_size, width)
    params = [p for p in student.parameters() if p.requires_grad] + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(data.train_size / cfg.batch_size)
    warm = max(1, int(cfg.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * max(0.0, (steps - k) / max(1, steps - warm))
    )
    # Model selection needs a stable estimate, not the whole split: 512 texts is plenty.
    val_texts, val_y = read_split(data.folder, "val", limit=512)
    n_params = sum(p.numel() for p in student.parameters())
    threads = cfg.threads or (1 if n_params < _SMALL else torch.get_num_threads())
    task = cfg.task
    with torch_threads(threads):
        target = val_target
        if target is None and task != "text-classification":
            target = predict(teacher, tok, val_texts, task, info)

        def validate() -> float:
            return _val_metric(task, student, tok, val_texts, val_y, target, info)

        def step_fn(texts, labels, rows) -> float:
            batch = feeds(tok, texts, names)
            cached = None
            if data.teacher_outputs is not None:  # the teacher ran once, before the first epoch
                cached = torch.from_numpy(data.teacher_outputs[rows].astype(np.float32))
            loss = _loss(cfg, teacher, student, proj, batch, labels, pairs, info, cached)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            return loss.item()

        with reporter.track("distill", steps) as advance:
            return _epochs(student, data, cfg, validate, step_fn, advance)


def _epochs(student, data, cfg, validate, step_fn, advance) -> TextTrainResult:
    """The epoch loop: train, validate, keep the best weights, stop after `patience` epochs
    without improvement."""
    best = (validate(), 0, {k: v.clone() for k, v in student.state_dict().items()})
    curve: list[dict[str, float]] = [{"epoch": 0, "val": best[0]}]
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        student.train()
        total, seen = 0.0, 0
        for texts, labels, rows in batches(data, cfg.batch_size, epoch, cfg.seed):
            loss = step_fn(texts, labels, rows)
            total, seen = total + loss * len(texts), seen + len(texts)
            advance(loss=loss)
        val = validate()
        curve.append({"epoch": epoch, "train_loss": total / max(1, seen), "val": val})
        if val > best[0]:
            best = (val, epoch, {k: v.clone() for k, v in student.state_dict().items()})
        elif epoch - best[1] >= cfg.patience:
            break
    student.load_state_dict(best[2])
    student.eval()
    return TextTrainResult(best[0], best[1], epoch, curve)


def _loss(cfg: DistillStepConfig, teacher, student, proj, batch, labels, pairs, info, cached=None):
    weights, task = cfg.weights, cfg.task
    need_states, need_att = "hidden_mse" in weights, "attention_kl" in weights
    rel = "relation_kl" in weights
    if cached is not None or teacher is None:  # pooled-output losses, or the labels alone
        t_head, t_states, t_att, t_qkv = cached, None, None, {}
    else:
        with torch.no_grad(), _projections(teacher, rel) as t_qkv:
            t_head, t_states, t_att = forward(teacher, batch, task, info, need_states, need_att)
    with _projections(student, rel) as s_qkv:
        s_head, s_states, s_att = forward(student, batch, task, info, need_states, need_att)
    mask = batch["attention_mask"]
    parts = {
        "logits_kd": lambda: L.logits_kd(s_head, t_head, cfg.temperature),
        "label_ce": lambda: L.label_ce(s_head, torch.tensor(labels)),
        "hidden_mse": lambda: L.hidden_mse(s_states, t_states, pairs, proj, mask),
        "attention_kl": lambda: L.attention_kl(s_att[-1], t_att[-1], mask),
        "relation_kl": lambda: L.relation_kl(s_qkv, t_qkv, mask, cfg.relation_heads),
        "embedding_cosine": lambda: L.embedding_cosine(s_head, t_head),
        "embedding_mse": lambda: L.embedding_mse(s_head, t_head),
    }
    return sum(w * parts[name]() for name, w in weights.items())


def _projections(model, wanted: bool):
    """The last layer's q/k/v projections of the next forward (relation_kl), or nothing."""
    return attention_projections(model) if wanted else nullcontext({})

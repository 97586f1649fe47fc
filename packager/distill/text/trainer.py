"""Distil a transformer student from a Hugging Face teacher on pre-tokenized text.

Each step runs the frozen teacher (or reads its cached outputs) and the student on the same
batch and adds the recipe's weighted losses. Batches are cut from `stream_batch`-row chunks
sorted by token length (so a batch pads little) and shuffled with a seeded order per epoch;
a DataLoader pads them (workers, pinned memory on CUDA). Training runs through the one loop
(packager.nets.loop): any device and precision, one process or a rank of a torchrun job. The
best student on the validation split (accuracy, or mean cosine to the teacher for embeddings)
is kept.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.data.text import read_split
from packager.data.tokens import Tokens, collate
from packager.distill.text import losses as L
from packager.nets.loop import LOCAL, LoopResult, Run, Trainer, loop, to_device
from packager.nets.text import attention_projections, forward, predict
from packager.nets.train import torch_threads
from packager.progress import Reporter

_SMALL = 5_000_000  # parameters: below this, one thread beats thread start-up costs


@dataclass
class TextData:
    """What a text distillation reads: the data folder (its val split), the training split's
    tokens, and the teacher's outputs on the training texts when they were cached."""

    folder: Path
    tokens: Tokens
    stream_batch: int
    teacher_outputs: np.ndarray | None = None  # (train_size, width), row i: training text i


def global_batches(lengths: np.ndarray, chunk: int, batch: int, epoch: int, seed: int):
    """Epoch `epoch`'s batches of row numbers: `chunk`-row pieces of the split sorted by length
    (ties in a seeded order), cut into batches, the cuts shuffled; the same on every rank."""
    rng = random.Random(seed * 1_000_003 + epoch)
    out: list[list[int]] = []
    for start in range(0, len(lengths), chunk):
        rows = range(start, min(start + chunk, len(lengths)))
        order = sorted(rows, key=lambda i: (lengths[i], rng.random()))
        cuts = [order[i : i + batch] for i in range(0, len(order), batch)]
        rng.shuffle(cuts)
        out += cuts
    return out


class _Rows(torch.utils.data.Dataset):
    def __init__(self, tokens: Tokens):
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, key):
        row, n, n_global = key
        return self.tokens.row(row), row, n, n_global


def loader(data: TextData, names, s: dict[str, Any], run: Run, epoch: int, start: int):
    """This rank's padded batches of epoch `epoch`, from global batch `start` on."""
    cuts = global_batches(data.tokens.lengths, data.stream_batch, s["batch_size"], epoch, s["seed"])
    keys = [[(r, len(run.mine(c)), len(c)) for r in run.mine(c) or c[:1]] for c in cuts[start:]]
    pad, labels = data.tokens.pad_id, data.tokens.labels

    def batch(items):
        rows = [r for _, r, _, _ in items]
        feeds = collate([t for t, *_ in items], pad, names)
        return feeds, torch.from_numpy(labels[rows]), rows, items[0][2], items[0][3]

    return torch.utils.data.DataLoader(
        _Rows(data.tokens),
        batch_sampler=keys,
        collate_fn=batch,
        num_workers=run.compute.workers,
        pin_memory=run.compute.pin_memory,
        generator=torch.Generator().manual_seed(s["seed"]),
    )


def _val_metric(task, student, tok, val_texts, val_y, target, info, run: Run) -> float:
    with run.compute.autocast():
        got = predict(student, tok, val_texts, task, info, device=run.compute.device)
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
    s: dict[str, Any],
    info: dict[str, Any],
    reporter: Reporter,
    run: Run = LOCAL,
    val_target: np.ndarray | None = None,
) -> LoopResult:
    """Train `student` in place on `teacher`'s outputs; it ends with its best-on-val weights.
    `pairs` maps each student hidden state to the teacher's it learns (hidden_mse); `s` holds
    the distill settings (task, weights, lr, ...). Seed torch before deriving the student:
    its init, the projections and dropout draw from one stream. A teacher you can only call is
    None: its answers are the cached outputs (embeddings) or the data's labels
    (classification), and `val_target` its vectors for the validation texts."""
    dev, task = run.compute.device, s["task"]
    if teacher is not None:
        teacher.to(dev)
    width = teacher.config.hidden_size if teacher is not None else student.config.hidden_size
    proj = L.Projections(len(pairs), student.config.hidden_size, width)
    params = [p for p in student.parameters() if p.requires_grad] + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=s["lr"], weight_decay=s["weight_decay"])
    per_epoch = len(global_batches(data.tokens.lengths, data.stream_batch, s["batch_size"], 1, 0))
    steps, warm = s["epochs"] * per_epoch, max(1, int(s["warmup"] * s["epochs"] * per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * max(0.0, (steps - k) / max(1, steps - warm))
    )
    # Model selection needs a stable estimate, not the whole split: 512 texts is plenty.
    val_texts, val_y = read_split(data.folder, "val", limit=512)
    n_params = sum(p.numel() for p in student.parameters())
    threads = s["threads"] or (1 if n_params < _SMALL else torch.get_num_threads())
    with torch_threads(threads if run.compute.kind == "cpu" else torch.get_num_threads()):
        target = val_target
        if target is None and task != "text-classification":
            with run.compute.autocast():
                target = predict(teacher, tok, val_texts, task, info, device=dev)

        def loss_fn(batch):
            feeds, labels, rows, n, n_global = to_device(batch, dev, run.compute.pin_memory)
            cached = None
            if data.teacher_outputs is not None:  # the teacher ran once, before the first epoch
                cached = torch.from_numpy(data.teacher_outputs[rows].astype(np.float32)).to(dev)
            loss = batch_loss(s, teacher, student, proj, feeds, labels, pairs, info, cached)
            return loss, n, n_global

        trainer = Trainer({"student": student, "proj": proj}, loss_fn, opt, run, sched=sched)
        with reporter.track("distill", steps) as advance:
            return loop(
                trainer,
                lambda e, k: loader(data, names, s, run, e, k),
                epochs=s["epochs"],
                steps_per_epoch=per_epoch,
                patience=s["patience"],
                advance=advance,
                validate=lambda: _val_metric(
                    task, student, tok, val_texts, val_y, target, info, run
                ),
                unit="texts/s",
            )


def batch_loss(s: dict[str, Any], teacher, student, proj, batch, labels, pairs, info, cached=None):
    """The weighted distillation loss of one batch, from the teacher's cached outputs (pooled
    losses) or its forward on the batch."""
    weights, task = s["weights"], s["task"]
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
        "logits_kd": lambda: L.logits_kd(s_head, t_head, s["temperature"]),
        "label_ce": lambda: L.label_ce(s_head, labels),
        "hidden_mse": lambda: L.hidden_mse(s_states, t_states, pairs, proj, mask),
        "attention_kl": lambda: L.attention_kl(s_att[-1], t_att[-1], mask),
        "relation_kl": lambda: L.relation_kl(s_qkv, t_qkv, mask, s["relation_heads"]),
        "embedding_cosine": lambda: L.embedding_cosine(s_head.float(), t_head.float()),
        "embedding_mse": lambda: L.embedding_mse(s_head.float(), t_head.float()),
    }
    return sum(w * parts[name]() for name, w in weights.items())


def _projections(model, wanted: bool):
    """The last layer's q/k/v projections of the next forward (relation_kl), or nothing."""
    return attention_projections(model) if wanted else nullcontext({})

"""Array models' training: a seeded AdamW + cosine schedule with early stopping on validation
accuracy, through the one loop (packager.nets.loop): any device and precision, one process or
a rank of a torchrun job. The builtin teachers and the array students train here."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from packager.nets.loop import LOCAL, LoopResult, Run, Trainer, loop
from packager.progress import Reporter

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@contextmanager
def torch_threads(n: int):
    """Tiny models train faster on one thread: thread start-up costs more than the math."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((model(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum())
    return correct / max(1, len(x))


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded shuffle of epoch `epoch`: the same on every rank and after a resume."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    weight_decay: float = 0.0,
    patience: int | None = None,
    reporter: Reporter,
    description: str = "train",
    run: Run = LOCAL,
) -> LoopResult:
    """Train with AdamW + cosine decay on `run`'s device; `loss_fn(logits, labels, index)`
    sees the rows' indices (on the device) so a distillation loss can look up precomputed
    teacher logits. Keeps the best-on-val weights (curve entries: val_accuracy)."""
    torch.manual_seed(seed)
    dev = run.compute.device
    model.to(dev)
    xt, yt = torch.from_numpy(x_train).to(dev), torch.from_numpy(y_train).to(dev)
    xv, yv = torch.from_numpy(x_val).to(dev), torch.from_numpy(y_val).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)

    def batches(epoch: int, start: int):
        order = epoch_order(len(xt), seed, epoch)
        for i in range(start * batch_size, len(order), batch_size):
            yield order[i : i + batch_size]

    def loss(idx: torch.Tensor):
        mine = idx[run.rank :: run.world]
        rows = (mine if len(mine) else idx[:1]).to(dev)  # an empty share trains with weight 0
        return loss_fn(model(xt[rows]), yt[rows], rows), len(mine), len(idx)

    trainer = Trainer({"model": model}, loss, opt, run, sched=sched, per_step=False)
    steps = math.ceil(len(xt) / batch_size)
    threads = 1 if run.compute.kind == "cpu" else torch.get_num_threads()
    with torch_threads(threads), reporter.track(description, epochs * steps) as advance:
        return loop(
            trainer,
            batches,
            epochs=epochs,
            steps_per_epoch=steps,
            validate=lambda: accuracy(model, xv, yv),
            patience=patience,
            advance=advance,
            unit="examples/s",
            val_name="val_accuracy",
            validate_first=False,
        )

"""A small, seeded training loop with early stopping on validation accuracy."""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from packager.progress import Reporter

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainResult:
    best_epoch: int
    best_val_accuracy: float
    epochs_run: int
    curve: list[dict[str, float]] = field(default_factory=list)


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
) -> TrainResult:
    """Train with AdamW + cosine decay; `loss_fn(logits, labels, index)` sees batch indices so a
    distillation loss can look up precomputed teacher logits. Keeps the best-on-val weights."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    curve: list[dict[str, float]] = []
    epoch = 0
    with torch_threads(1), reporter.track(description, epochs) as advance:
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(xt), generator=gen)
            total, seen = 0.0, 0
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                loss = loss_fn(model(xt[idx]), yt[idx], idx)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                seen += len(idx)
            sched.step()
            val_acc = accuracy(model, xv, yv)
            curve.append({"epoch": epoch, "train_loss": total / seen, "val_accuracy": val_acc})
            advance(loss=total / seen, val=val_acc)
            if val_acc > best[0]:
                best = (val_acc, epoch, copy.deepcopy(model.state_dict()))
            elif patience is not None and epoch - best[1] >= patience:
                break
    model.load_state_dict(best[2])
    model.eval()
    return TrainResult(best_epoch=best[1], best_val_accuracy=best[0], epochs_run=epoch, curve=curve)

"""Image students and their distillation: a fresh cnn with global pooling, or the teacher
pruned to a width ratio (torch-pruning: dependency-aware structured pruning, weights copied),
trained on the teacher's logits at temperature T (Hinton's KD), an optional hint loss on the
pooled last feature map, and label cross-entropy when the data has labels. Training images are
augmented (packager.data.image_augment); validation is top-1 agreement with the teacher."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from packager.errors import RecipeError


@dataclass
class ImageTrainResult:
    best_epoch: int
    best_val_agreement: float
    epochs_run: int
    start_val_agreement: float
    curve: list[dict[str, float]] = field(default_factory=list)


def pruned(teacher: nn.Module, width: float, example: torch.Tensor) -> tuple[nn.Module, dict]:
    """A copy of `teacher` keeping `width` of the channels of every prunable layer (L1 norm
    ranks them; dependent layers are pruned together), its classifier's outputs untouched."""
    try:
        import torch_pruning as tp
    except ImportError:
        raise RecipeError(
            "distill.student.arch = pruned needs torch-pruning: pip install 'edgepack[vision]'"
        ) from None
    from packager.nets.array import layer_shapes

    model = copy.deepcopy(teacher).eval()
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    pruner = tp.pruner.MetaPruner(
        model,
        example[:1],
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=1.0 - width,
        ignored_layers=heads,
    )
    pruner.step()
    return model, layer_shapes(model)


def _head(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise RecipeError("distill.losses.feature_mse needs models whose last layer is Linear")
    return linears[-1]


class _Features:
    """The input of a model's last Linear (its pooled features), captured on each forward."""

    def __init__(self, model: nn.Module):
        self.value: torch.Tensor | None = None
        self.width = _head(model).in_features
        self.hook = _head(model).register_forward_hook(self._keep)

    def _keep(self, _m, inputs, _out) -> None:
        self.value = inputs[0].flatten(1)


def _agreement(student: nn.Module, x: np.ndarray, ref: np.ndarray) -> float:
    student.eval()
    with torch.no_grad():
        pred = torch.cat([student(torch.from_numpy(x[i : i + 64])) for i in range(0, len(x), 64)])
    return float((pred.argmax(-1).numpy() == ref).mean())


def train(teacher, student, data, cfg, weights: dict[str, float], reporter) -> ImageTrainResult:
    """Distil `teacher` into `student` on `data` (packager.data.image.ImageData) per `cfg`
    (DistillStepConfig): AdamW + cosine decay, early stopping on validation agreement."""
    from packager.distill.losses import kd_loss
    from packager.nets.train import torch_threads

    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad = False
    x_val = data.array("val")
    with torch.no_grad():
        ref = teacher(torch.from_numpy(x_val)).argmax(-1).numpy()
    hint = weights.get("feature_mse", 0.0)
    t_feat, s_feat = (_Features(teacher), _Features(student)) if hint else (None, None)
    proj = nn.Linear(s_feat.width, t_feat.width) if hint and s_feat.width != t_feat.width else None
    params = list(student.parameters()) + (list(proj.parameters()) if proj else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    start = _agreement(student, x_val, ref)
    best = (start, 0, copy.deepcopy(student.state_dict()))
    curve: list[dict[str, float]] = [{"epoch": 0, "val_agreement": start}]
    epoch = 0
    with torch_threads(1), reporter.track("distill", cfg.epochs) as advance:
        for epoch in range(1, cfg.epochs + 1):
            student.train()
            total, seen = 0.0, 0
            batches = data.batches(
                "train", cfg.batch_size, augment=cfg.augment, seed=cfg.seed + epoch
            )
            for xb, yb in batches:
                x = torch.from_numpy(xb)
                with torch.no_grad():
                    soft = teacher(x)
                logits = student(x)
                loss = weights.get("logits_kd", 0.0) * kd_loss(
                    logits, soft, None, cfg.temperature, 1.0
                )
                if yb is not None and weights.get("label_ce"):
                    loss = loss + weights["label_ce"] * nn.functional.cross_entropy(
                        logits, torch.from_numpy(yb)
                    )
                if hint:
                    s = proj(s_feat.value) if proj else s_feat.value
                    loss = loss + hint * nn.functional.mse_loss(s, t_feat.value)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, seen = total + loss.item() * len(xb), seen + len(xb)
            sched.step()
            agree = _agreement(student, x_val, ref)
            curve.append(
                {"epoch": epoch, "train_loss": total / max(seen, 1), "val_agreement": agree}
            )
            advance(loss=total / max(seen, 1), val=agree)
            if agree > best[0]:
                best = (agree, epoch, copy.deepcopy(student.state_dict()))
            elif epoch - best[1] >= cfg.patience:
                break
    for f in (t_feat, s_feat):
        if f is not None:
            f.hook.remove()
    student.load_state_dict(best[2])
    return ImageTrainResult(best[1], best[0], epoch, start, curve)


def default_weights(cfg, labeled: bool) -> dict[str, float]:
    """The losses in use: distill.losses, else alpha KD + (1 - alpha) CE with labels, KD alone
    without (agreement with the teacher is all unlabeled data can teach)."""
    if cfg.losses is not None:
        return cfg.losses.active()
    if not labeled:
        return {"logits_kd": 1.0}
    return {k: w for k, w in (("logits_kd", cfg.alpha), ("label_ce", 1 - cfg.alpha)) if w}


def smaller_or_refused(student: dict[str, Any], teacher: dict[str, Any], allow: bool) -> None:
    """A student must be smaller than its teacher in parameters and MACs (or the recipe says
    distill.allow_larger): a larger one only costs, and "Nx smaller" would be a lie."""
    worse = [
        f"{k} {student[k]:,} >= the teacher's {teacher[k]:,}"
        for k in ("params", "macs")
        if teacher.get(k) and student.get(k) is not None and student[k] >= teacher[k]
    ]
    if worse and not allow:
        raise RecipeError(
            "distill.student is not smaller than its teacher (" + "; ".join(worse) + "): choose "
            "fewer channels or a smaller width, or set distill.allow_larger = true"
        )

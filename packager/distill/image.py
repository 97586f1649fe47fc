"""Image students and their distillation: a fresh cnn with global pooling, or the teacher
pruned to a width ratio (torch-pruning: dependency-aware structured pruning, weights copied),
trained on the teacher's logits at temperature T (Hinton's KD), an optional hint loss on the
pooled last feature map, and label cross-entropy when the data has labels. Training images are
augmented (packager.data.image_augment); validation is top-1 agreement with the teacher."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from packager.errors import RecipeError
from packager.nets.loop import to_device


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


def _agreement(student: nn.Module, x: torch.Tensor, ref: torch.Tensor) -> float:
    student.eval()
    with torch.no_grad():
        pred = torch.cat([student(x[i : i + 64]) for i in range(0, len(x), 64)])
    return float((pred.argmax(-1) == ref).float().mean())


class _Training(torch.utils.data.Dataset):
    """Training images keyed (epoch, image, rows of this rank, rows of the global batch):
    decoded, augmented with the image's own seeded draw and preprocessed, in loader workers."""

    def __init__(self, data, augment, seed: int):
        self.data, self.augment, self.seed = data, augment, seed

    def __len__(self) -> int:
        return len(self.data.rows("train"))

    def __getitem__(self, key):
        epoch, i, n, n_global = key
        x, y = self.data.training_item(i, epoch, self.seed, self.augment)
        return torch.from_numpy(x), y, n, n_global


def _collate(items):
    return (
        torch.stack([x for x, *_ in items]),
        torch.tensor([y for _, y, *_ in items]),
        items[0][2],
        items[0][3],
    )


def loader(data, s: dict[str, Any], run, epoch: int, start: int):
    """This rank's batches of epoch `epoch` from batch `start` on: a seeded shuffle cut into
    global batches of s["batch_size"], each rank its rows of each (DataLoader workers and
    pinned memory as the run's compute says)."""
    from packager.config.distill import AugmentConfig

    n = len(data.rows("train"))
    order = np.random.default_rng([s["seed"], epoch]).permutation(n).tolist()
    keys = []
    for i in range(start * s["batch_size"], n, s["batch_size"]):
        batch = order[i : i + s["batch_size"]]
        mine = run.mine(batch)
        keys.append([(epoch, j, len(mine), len(batch)) for j in mine or batch[:1]])
    augment = AugmentConfig.model_validate(s["augment"])
    return torch.utils.data.DataLoader(
        _Training(data, augment, s["seed"]),
        batch_sampler=keys,
        collate_fn=_collate,
        num_workers=run.compute.workers,
        pin_memory=run.compute.pin_memory,
        generator=torch.Generator().manual_seed(s["seed"]),
    )


def train(teacher, student, data, s: dict[str, Any], weights: dict[str, float], reporter, run):
    """Distil `teacher` into `student` on `data` (packager.data.image.ImageData) with the
    settings `s` (epochs, batch_size, lr, weight_decay, temperature, patience, seed, augment):
    AdamW + cosine decay, early stopping on validation agreement (packager.nets.loop)."""
    import math

    from packager.distill.losses import kd_loss
    from packager.nets.loop import Trainer, loop
    from packager.nets.train import torch_threads

    dev = run.compute.device
    teacher.to(dev).eval()
    for p in teacher.parameters():
        p.requires_grad = False
    if run.world > 1:  # batch statistics over the global batch, as one process computes them
        from packager.nets.batchnorm import global_batch_norm

        student = global_batch_norm(student.to(dev))
    x_val = torch.from_numpy(data.array("val")).to(dev)
    with torch.no_grad():
        ref = teacher(x_val).argmax(-1)
    hint = weights.get("feature_mse", 0.0)
    t_feat, s_feat = (_Features(teacher), _Features(student)) if hint else (None, None)
    proj = nn.Linear(s_feat.width, t_feat.width) if hint and s_feat.width != t_feat.width else None
    modules = {"student": student, **({"proj": proj} if proj else {})}
    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=s["lr"], weight_decay=s["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s["epochs"])

    def loss_fn(batch):
        x, y, n, n_global = to_device(batch, dev, run.compute.pin_memory)
        with torch.no_grad():
            soft = teacher(x)
        logits = student(x)
        loss = weights.get("logits_kd", 0.0) * kd_loss(logits, soft, None, s["temperature"], 1.0)
        if data.labeled and weights.get("label_ce"):
            loss = loss + weights["label_ce"] * nn.functional.cross_entropy(logits, y)
        if hint:
            f = proj(s_feat.value) if proj else s_feat.value
            loss = loss + hint * nn.functional.mse_loss(f.float(), t_feat.value.float())
        return loss, n, n_global

    trainer = Trainer(modules, loss_fn, opt, run, sched=sched, per_step=False)
    steps = math.ceil(len(data.rows("train")) / s["batch_size"])
    threads = 1 if run.compute.kind == "cpu" else torch.get_num_threads()
    with torch_threads(threads), reporter.track("distill", s["epochs"] * steps) as advance:
        res = loop(
            trainer,
            lambda e, k: loader(data, s, run, e, k),
            epochs=s["epochs"],
            steps_per_epoch=steps,
            validate=lambda: _agreement(student, x_val, ref),
            patience=s["patience"],
            advance=advance,
            unit="images/s",
            val_name="val_agreement",
        )
    for f in (t_feat, s_feat):
        if f is not None:
            f.hook.remove()
    return res


def default_weights(losses: dict[str, float] | None, alpha: float, labeled: bool) -> dict:
    """The losses in use: distill.losses, else alpha KD + (1 - alpha) CE with labels, KD alone
    without (agreement with the teacher is all unlabeled data can teach)."""
    if losses is not None:
        return losses
    if not labeled:
        return {"logits_kd": 1.0}
    return {k: w for k, w in (("logits_kd", alpha), ("label_ce", 1 - alpha)) if w}


def image_student(teacher_meta: dict[str, Any], teacher, spec: dict[str, Any], x):
    """(student, factory, kwargs, shapes): a fresh cnn, or the teacher pruned to a width."""
    from packager.nets.array import build

    if spec["arch"] == "pruned":
        student, shapes = pruned(teacher, spec["width"], x)
        return student, teacher_meta["factory"], teacher_meta["kwargs"], shapes
    if spec["arch"] != "cnn":
        raise RecipeError(
            f"distill.student.arch = {spec['arch']} does not apply to images (cnn, pruned)"
        )
    kwargs = {
        "in_shape": list(x.shape[1:]),
        "num_classes": int(teacher_meta["output_classes"]),
        "channels": list(spec["channels"]),
        "hidden": spec["hidden"],
    }
    return (
        build("packager.nets.array:image_cnn", kwargs),
        "packager.nets.array:image_cnn",
        kwargs,
        None,
    )


def run(job: dict[str, Any], run, reporter) -> dict[str, Any]:
    """One image distillation from plain arguments (this process, or one torchrun rank):
    `job` holds teacher / teacher_meta, data / data_meta, student (its config JSON),
    settings and out."""
    from pathlib import Path

    from packager.data.image import ImageData
    from packager.nets.array import count_macs, load_torch, param_count, save_torch
    from packager.nets.loop import compute_record

    s, tmeta = job["settings"], job["teacher_meta"]
    data = ImageData(Path(job["data"]), job["data_meta"])
    teacher = load_torch(Path(job["teacher"]), tmeta)
    x = torch.from_numpy(data.array("val", limit=2))
    torch.manual_seed(s["seed"])
    student, factory, kwargs, shapes = image_student(tmeta, teacher, job["student"], x)
    size = {"params": param_count(student), "macs": count_macs(student, x)}
    smaller_or_refused(size, tmeta, s["allow_larger"])
    weights = default_weights(s["losses"], s["alpha"], data.labeled)
    res = train(teacher, student, data, s, weights, reporter, run)
    meta = {}
    if run.writer:
        student = student.cpu()
        meta = save_torch(
            student, Path(job["out"]), factory, kwargs, tmeta.get("import_path"), shapes
        )
    return {
        "meta": meta,
        "size": size,
        "losses": weights,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "val_agreement": res.best_val,
        "start_val_agreement": res.curve[0]["val_agreement"],
        "curve": res.curve,
        "compute": compute_record(run, res, "images/s"),
    }


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

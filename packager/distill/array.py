"""An array student's distillation from plain arguments (one process, or one rank of a
torchrun job: packager.distill.ddp): a fresh cnn/mlp trained on the teacher's soft targets,
Hinton's KD + CE by default (packager.nets.train.fit). The teacher's logits on the training
set are computed once, each rank a share of the rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.nets.loop import Run, compute_record, sharded_map


def array_student_kwargs(splits, student: dict[str, Any], num_classes: int) -> dict:
    """The cnn/mlp factory's arguments (distill trains it, sketch costs it untrained). The
    student answers in the teacher's classes (its output width), not max(label) + 1."""
    kwargs = {
        "in_shape": list(splits.preprocessing.sample_shape),
        "num_classes": num_classes,
        "hidden": student["hidden"],
    }
    if student["arch"] == "cnn":
        kwargs["channels"] = list(student["channels"])
    return kwargs


def teacher_logits(teacher, x: np.ndarray, run: Run, batch: int = 512) -> torch.Tensor:
    """The frozen teacher's logits on `x`, once: batch i on rank i % world, gathered."""
    teacher.to(run.compute.device).eval()

    def logits(start: int) -> np.ndarray:
        with torch.no_grad(), run.compute.autocast():
            xb = torch.from_numpy(x[start : start + batch]).to(run.compute.device)
            return teacher(xb).float().cpu().numpy()

    parts = [out for _, out in sharded_map(list(range(0, len(x), batch)), logits, run)]
    return torch.from_numpy(np.concatenate(parts)).to(run.compute.device)


def run(job: dict[str, Any], run: Run, reporter) -> dict[str, Any]:
    """`job`: teacher / teacher_meta, data / data_meta, factory, student (its config JSON),
    settings (the distill fields the loop reads), out."""
    from packager.data import Splits
    from packager.distill.image import smaller_or_refused
    from packager.distill.losses import kd_loss
    from packager.nets.array import build, count_macs, load_torch, param_count, save_torch
    from packager.nets.train import fit

    s = job["settings"]
    splits = Splits.load(Path(job["data"]), job["data_meta"])
    x_train = splits.model_input("train")
    teacher = load_torch(Path(job["teacher"]), job["teacher_meta"])
    soft = teacher_logits(teacher, x_train, run)
    kwargs = array_student_kwargs(splits, job["student"], int(soft.shape[1]))
    torch.manual_seed(s["seed"])
    student = build(job["factory"], kwargs)
    x1 = torch.from_numpy(x_train[:1])
    size = [{"params": param_count(m), "macs": count_macs(m.cpu(), x1)} for m in (student, teacher)]
    smaller_or_refused(*size, s["allow_larger"])
    w = s["losses"]

    def loss_fn(logits, labels, idx):
        if w is None:  # the classic Hinton mix, from alpha
            return kd_loss(logits, soft[idx], labels, s["temperature"], s["alpha"])
        kd = kd_loss(logits, soft[idx], None, s["temperature"], 1.0) if "logits_kd" in w else 0.0
        ce = torch.nn.functional.cross_entropy(logits, labels) if "label_ce" in w else 0.0
        return w.get("logits_kd", 0.0) * kd + w.get("label_ce", 0.0) * ce

    res = fit(
        student,
        loss_fn,
        x_train,
        splits.y["train"],
        splits.model_input("val"),
        splits.y["val"],
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        seed=s["seed"],
        weight_decay=s["weight_decay"],
        patience=s["patience"],
        reporter=reporter,
        description="distill",
        run=run,
    )
    meta = save_torch(student.cpu(), Path(job["out"]), job["factory"], kwargs) if run.writer else {}
    return {
        "meta": meta,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "val_accuracy": res.best_val,
        "curve": res.curve,
        "compute": compute_record(run, res, "examples/s"),
    }

"""Fine-tune an hf: folder into a text classifier on the data's own labelled training split
(teacher.train.fine_tune): a fresh sequence-classification head on the data's classes, in the
data's order, trained with the encoder (AdamW, linear warm-up and decay, cross-entropy), the
best epoch on the validation split kept. The teacher of a task distillation is a model
fine-tuned on the task, as in DistilBERT's and TinyBERT's task distillation."""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path

import numpy as np

from packager.progress import Reporter


def fine_tune_classifier(
    folder: Path,
    labels: list[str],
    tok,
    data: Path,
    settings: dict,
    reporter: Reporter,
    compute=None,
):
    """The fine-tuned model (AutoModelForSequenceClassification, eval mode, on the CPU);
    `settings`: epochs, batch_size, lr, seed, threads; `data`: the folder of train/val .jsonl
    splits; `compute` where it trains (packager.nets.device.Compute; None: the CPU, fp32)."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from packager.data.text import read_split
    from packager.nets.device import CPU
    from packager.nets.loop import Run, Trainer, to_device
    from packager.nets.train import torch_threads

    torch.manual_seed(settings["seed"])
    hf_logging.set_verbosity_error()  # "some weights are newly initialized": the head, on purpose
    model = AutoModelForSequenceClassification.from_pretrained(
        str(folder),
        local_files_only=True,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )
    texts, y = read_split(data, "train")
    val_texts, val_y = read_split(data, "val")
    steps = settings["epochs"] * math.ceil(len(texts) / settings["batch_size"])
    opt = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=0.01)
    warm = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    run = Run(compute or CPU)
    dev = run.compute.device

    def loss(idx):
        feeds = to_device(_feeds(tok, [texts[i] for i in idx]), dev, run.compute.pin_memory)
        labels = torch.from_numpy(y[idx]).to(dev)
        return model(**feeds, labels=labels).loss, len(idx), len(idx)

    trainer = Trainer({"model": model}, loss, opt, run, sched=sched)
    best, best_acc = copy.deepcopy(model.state_dict()), -1.0
    threads = settings.get("threads") or torch.get_num_threads()
    with torch_threads(threads), reporter.track("fine-tune teacher", steps) as adv:
        for epoch in range(settings["epochs"]):
            model.train()
            for idx in _batches(texts, settings["batch_size"], settings["seed"], epoch):
                adv(1, loss=trainer.step(idx)[0])
            with run.compute.autocast():
                acc = accuracy(model, tok, val_texts, val_y, device=dev)
            if acc > best_acc:
                best, best_acc = copy.deepcopy(model.state_dict()), acc
    model.load_state_dict(best)
    return model.cpu().eval(), best_acc


def _batches(texts: list[str], batch: int, seed: int, epoch: int):
    """Length-sorted batches in a seeded order (short texts pad little)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), rng.random()))
    cuts = [np.asarray(order[i : i + batch]) for i in range(0, len(order), batch)]
    rng.shuffle(cuts)
    return cuts


def _feeds(tok, texts: list[str]):
    import torch

    from packager.data.text import encode

    return {k: torch.from_numpy(v) for k, v in encode(tok, texts).items()}


def accuracy(
    model, tok, texts: list[str], y: np.ndarray, batch: int = 128, device: str = "cpu"
) -> float:
    import torch

    model.eval()
    pred = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            feeds = {k: v.to(device) for k, v in _feeds(tok, texts[i : i + batch]).items()}
            pred.append(model(**feeds).logits.argmax(-1).cpu().numpy())
    return float((np.concatenate(pred) == y).mean())

"""Distil a transformer student from a Hugging Face teacher on streamed, tokenised text.

Each step runs the frozen teacher and the student on the same batch and adds the recipe's
weighted losses. Batches are cut from `data.stream_batch`-row chunks sorted by length (so a
batch pads little: on a CPU, padding is most of the cost of short texts) and shuffled with a
seeded order per epoch. The best student on the validation split (accuracy, or mean cosine to
the teacher for embeddings) is kept.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from packager.data.text import encode, load_tokenizer, read_split, stream_split
from packager.distill import text_losses as L
from packager.distill.trainer import torch_threads
from packager.errors import RecipeError
from packager.sources.hf import MODEL_DIR, load_model, save_tokenizer

if TYPE_CHECKING:
    from packager.recipe import DistillConfig
    from packager.stage import Artifact, Output, StageContext

_SMALL = 5_000_000  # parameters: below this, one thread beats thread start-up costs


def input_names(model) -> list[str]:
    """The tokenizer fields the model's forward takes (DistilBERT has no token_type_ids)."""
    params = inspect.signature(model.forward).parameters
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in params]


def _feeds(tok, texts: list[str], names: list[str]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in encode(tok, texts, names).items()}


def forward(model, feeds, task: str, info: dict[str, Any], states=False, attentions=False):
    """(head output, hidden states, attentions): logits for classifiers, the pooled (and, if the
    teacher normalises, normalised) sentence embedding for feature extraction."""
    out = model(**feeds, output_hidden_states=states, output_attentions=attentions)
    if task == "text-classification":
        head = out.logits
    else:
        head = L.pool(out.last_hidden_state, feeds["attention_mask"], info["pooling"], False)
    return head, out.hidden_states, out.attentions


@torch.no_grad()
def predict(model, tok, texts: list[str], task: str, info: dict, batch: int = 64) -> np.ndarray:
    """Logits or final embeddings for `texts`, batched by length, returned in input order."""
    model.eval()
    names = input_names(model)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        head, _, _ = forward(model, _feeds(tok, [texts[j] for j in idx], names), task, info)
        if task != "text-classification" and info.get("normalize"):
            head = torch.nn.functional.normalize(head, dim=-1)
        parts.append(head.float().numpy())
    out = np.concatenate(parts)
    result = np.empty_like(out)
    result[order] = out
    return result


def batches(data: Artifact, batch: int, epoch: int, seed: int) -> Iterator[tuple[list, list]]:
    """Length-bucketed training batches, streamed chunk by chunk, in a seeded order."""
    rng = random.Random(seed * 1_000_003 + epoch)
    for texts, labels in stream_split(data, "train", data.meta["stream_batch"]):
        order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), rng.random()))
        cuts = [order[i : i + batch] for i in range(0, len(order), batch)]
        rng.shuffle(cuts)
        for idx in cuts:
            yield [texts[i] for i in idx], [labels[i] for i in idx]


def _val_metric(task, student, tok, val_texts, val_y, target, info) -> float:
    got = predict(student, tok, val_texts, task, info)
    if task == "text-classification":
        return float((got.argmax(-1) == val_y).mean())
    a = got / np.linalg.norm(got, axis=1, keepdims=True).clip(1e-12)
    b = target / np.linalg.norm(target, axis=1, keepdims=True).clip(1e-12)
    return float((a * b).sum(1).mean())


def _freeze_embeddings(student) -> None:
    emb = getattr(student.base_model, "embeddings", None) or student.get_input_embeddings()
    for p in emb.parameters():
        p.requires_grad = False


def distill_text(teacher_art: Artifact, cfg: DistillConfig, ctx: StageContext) -> Output:
    from packager.distill.arch import param_count
    from packager.distill.transformer import derive_student, init_kind, matched_states
    from packager.stage import Output

    task, data, spec = ctx.recipe.task, ctx.inputs["data"], cfg.student
    weights = cfg.loss_weights(task)
    if task == "text-classification" and not data.meta["labels"]:
        raise RecipeError(
            f"text-classification needs labels: data.source {data.meta['source']} has no "
            f"{ctx.recipe.data.label_column!r} column (data.label_column)"
        )
    info = {k: teacher_art.meta.get(k) for k in ("pooling", "normalize")}
    folder: Path = teacher_art.file()
    eager = "attention_kl" in weights
    torch.manual_seed(cfg.seed)
    teacher = load_model(folder, task, eager_attention=eager)
    for p in teacher.parameters():
        p.requires_grad = False
    tok = load_tokenizer(folder, data.meta["max_length"])
    names = input_names(teacher)  # a derived student takes the same inputs
    sample_texts, _ = next(stream_split(data, "train", 128), ([], []))
    student, ids = derive_student(teacher, spec, _feeds(tok, sample_texts, names))
    init = init_kind(teacher.config, spec)
    if spec.freeze_embeddings:
        _freeze_embeddings(student)
    pairs = matched_states(ids)
    proj = L.Projections(len(pairs), student.config.hidden_size, teacher.config.hidden_size)
    params = [p for p in student.parameters() if p.requires_grad] + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(data.meta["sizes"]["train"] / cfg.batch_size)
    warm = max(1, int(cfg.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * max(0.0, (steps - k) / max(1, steps - warm))
    )
    # Model selection needs a stable estimate, not the whole split: 512 texts is plenty.
    val_texts, val_y = read_split(data, "val", limit=512)
    threads = cfg.threads or (1 if param_count(student) < _SMALL else torch.get_num_threads())
    with torch_threads(threads):
        target = (
            None if task == "text-classification" else predict(teacher, tok, val_texts, task, info)
        )
        start = _val_metric(task, student, tok, val_texts, val_y, target, info)
        best = (start, 0, {k: v.clone() for k, v in student.state_dict().items()})
        curve: list[dict[str, float]] = [{"epoch": 0, "val": best[0]}]
        epoch = 0
        with ctx.reporter.track("distill", steps) as advance:
            for epoch in range(1, cfg.epochs + 1):
                student.train()
                total, seen = 0.0, 0
                for texts, labels in batches(data, cfg.batch_size, epoch, cfg.seed):
                    feeds = _feeds(tok, texts, names)
                    loss = _loss(
                        weights, cfg, teacher, student, proj, feeds, labels, pairs, task, info
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    total, seen = total + loss.item() * len(texts), seen + len(texts)
                    advance(loss=loss.item())
                val = _val_metric(task, student, tok, val_texts, val_y, target, info)
                curve.append({"epoch": epoch, "train_loss": total / max(1, seen), "val": val})
                if val > best[0]:
                    best = (val, epoch, {k: v.clone() for k, v in student.state_dict().items()})
                elif epoch - best[1] >= cfg.patience:
                    break
    student.load_state_dict(best[2])
    dest = ctx.workdir / MODEL_DIR
    student.eval().save_pretrained(str(dest), safe_serialization=True)
    save_tokenizer(folder, dest)
    n, tn = param_count(student), teacher_art.meta["params"]
    metric = "val_accuracy" if task == "text-classification" else "val_cosine"
    ctx.log(
        f"student: {len(ids)} of {teacher.config.num_hidden_layers} layers {ids}"
        f" ({init} init), {n:,} params ({tn / n:.1f}x fewer); "
        f"losses {weights}; {metric.replace('_', ' ')} {curve[0]['val']:.4f} before, "
        f"{best[0]:.4f} at epoch {best[1]}/{epoch}"
    )
    return Output(
        "hf",
        {
            **info,
            "file": MODEL_DIR,
            "task": task,
            "arch": "transformer",
            "params": n,
            "teacher_params": tn,
            "compression": tn / n,
            "layers_kept": ids,
            "init": init,
            "losses": weights,
            "best_epoch": best[1],
            "epochs_run": epoch,
            metric: best[0],
            "curve": curve,
        },
    )


def _loss(weights, cfg, teacher, student, proj, feeds, labels, pairs, task, info):
    need_states, need_att = "hidden_mse" in weights, "attention_kl" in weights
    with torch.no_grad():
        t_head, t_states, t_att = forward(teacher, feeds, task, info, need_states, need_att)
    s_head, s_states, s_att = forward(student, feeds, task, info, need_states, need_att)
    mask = feeds["attention_mask"]
    parts = {
        "logits_kd": lambda: L.logits_kd(s_head, t_head, cfg.temperature),
        "label_ce": lambda: L.label_ce(s_head, torch.tensor(labels)),
        "hidden_mse": lambda: L.hidden_mse(s_states, t_states, pairs, proj, mask),
        "attention_kl": lambda: L.attention_kl(s_att[-1], t_att[-1], mask),
        "embedding_cosine": lambda: L.embedding_cosine(s_head, t_head),
        "embedding_mse": lambda: L.embedding_mse(s_head, t_head),
    }
    return sum(w * parts[name]() for name, w in weights.items())

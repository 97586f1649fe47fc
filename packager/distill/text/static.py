"""Static-embedding students: one vector per word piece, averaged (Model2Vec).

`distill_table` runs model2vec's distillation (every vocabulary token through the teacher,
Zipf/SIF weighting; no PCA, so the vectors stay in the teacher's space and compare with its
sentence embeddings), mapped back onto the teacher's own tokenizer ids: the runtimes tokenise
with the teacher's tokenizer.json and feed its ids. Special tokens ([CLS], [SEP], [PAD], ...)
get weight 0, so a sentence is the mean of its word pieces' vectors, as in model2vec.

`tune` then trains the table so the normalised mean of a text's vectors matches the teacher's
sentence embedding of it (cosine + MSE, the losses of `distill.losses`), or, with a `head`,
so a linear layer on that mean gives the teacher's logits (KD at a temperature, + label CE):
from the teacher's cached outputs over the training texts (teacher_outputs), each epoch in a
seeded order; the best table on the validation split is kept.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TABLE, WEIGHTS, HEAD = "table.npy", "token_weights.npy", "head.npz"


@dataclass
class StaticStudent:
    """table (vocab, dim) float32, weights (vocab,) float32 (0: ignored tokens), and for a
    classifier the head (classes, dim) and its bias."""

    table: np.ndarray
    weights: np.ndarray
    head: np.ndarray | None = None
    bias: np.ndarray | None = None

    def save(self, folder: Path) -> None:
        np.save(folder / TABLE, self.table.astype(np.float32))
        np.save(folder / WEIGHTS, self.weights.astype(np.float32))
        if self.head is not None:
            np.savez(folder / HEAD, weight=self.head, bias=self.bias)

    @classmethod
    def load(cls, folder: Path) -> StaticStudent:
        head = np.load(folder / HEAD) if (folder / HEAD).is_file() else None
        return cls(
            np.load(folder / TABLE),
            np.load(folder / WEIGHTS),
            None if head is None else head["weight"],
            None if head is None else head["bias"],
        )

    def embed(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The pooled, L2-normalised sentence vectors (numpy: the graph's reference)."""
        w = self.weights[ids] * mask
        v = (self.table[ids] * w[..., None]).sum(1) / np.maximum(w.sum(1, keepdims=True), 1e-9)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def special_ids(folder: Path) -> set[int]:
    """Ids of the tokenizer's special tokens (tokenizer.json's added_tokens marked special)."""
    spec = json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))
    return {int(t["id"]) for t in spec.get("added_tokens", []) if t.get("special")}


def distill_table(folder: Path, sif_coefficient: float | None) -> StaticStudent:
    """model2vec's distillation of the transformers folder (offline), on the teacher's ids."""
    from model2vec.distill.distillation import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    m2v = distill_from_model(
        model,
        tokenizer,
        pca_dims=None,  # the teacher's space: cosine to its sentence embeddings means something
        sif_coefficient=sif_coefficient,
        quantize_to="float32",
    )
    vocab = tokenizer.get_vocab()
    table = np.zeros((len(vocab), m2v.embedding.shape[1]), np.float32)
    weights = np.zeros(len(vocab), np.float32)
    for token, row in m2v.tokenizer.get_vocab().items():
        if token in vocab:
            table[vocab[token]] = m2v.embedding[row]
            weights[vocab[token]] = 1.0
    weights[sorted(special_ids(folder))] = 0.0
    return StaticStudent(table, weights)


@dataclass
class TuneResult:
    best_val: float
    best_epoch: int
    epochs_run: int
    curve: list[dict[str, float]] = field(default_factory=list)


@dataclass
class TuneData:
    """Tokenised texts (ids, mask: int64 arrays padded per split) and their targets: the
    teacher's outputs (sentence vectors, or logits with labels for a classifier)."""

    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray, np.ndarray]
    train_labels: np.ndarray | None = None
    val_labels: np.ndarray | None = None


def tune_data(
    folder: Path, task: str, info: dict, data: Path, max_length: int, outputs: Path
) -> TuneData:
    """The training texts of the split folder `data` tokenised with the teacher's tokenizer,
    with the teacher's cached outputs on them (`outputs`, teacher_outputs' .npy); the
    validation texts with the teacher's outputs computed here."""
    from packager.data.text import encode, load_tokenizer, read_split
    from packager.nets.text import predict
    from packager.sources.hf import load_model

    tok = load_tokenizer(folder, max_length)
    names = ["input_ids", "attention_mask"]
    texts, y = read_split(data, "train")
    enc = encode(tok, texts, names)
    target = np.asarray(np.load(outputs, mmap_mode="r"), np.float32)
    val_texts, val_y = read_split(data, "val")
    val_target = predict(load_model(folder, task), tok, val_texts, task, info)
    venc = encode(tok, val_texts, names)
    return TuneData(
        (enc["input_ids"], enc["attention_mask"], target),
        (venc["input_ids"], venc["attention_mask"], val_target),
        y,
        val_y,
    )


def _pooled(table, weights, ids, mask):
    import torch

    w = weights[ids] * mask
    v = (table[ids] * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-9)
    return torch.nn.functional.normalize(v, dim=-1)


def _score(student: StaticStudent, ids, mask, target, labels) -> float:
    """Validation: accuracy (classifier, against labels) or mean cosine to the teacher."""
    v = student.embed(ids, mask)
    if student.head is not None:
        return float(((v @ student.head.T + student.bias).argmax(1) == labels).mean())
    t = target / np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
    return float((v * t).sum(1).mean())


def tune(student: StaticStudent, data: TuneData, s: dict, classes: int | None = None):
    """Train the table (and a head of `classes` outputs) on the teacher's outputs; settings
    `s`: weights (the losses), epochs, batch_size, lr, seed, patience, temperature."""
    import torch

    torch.manual_seed(s["seed"])
    table = torch.nn.Parameter(torch.from_numpy(student.table.copy()))
    weights = torch.from_numpy(student.weights)
    params = [table]
    head = None
    if classes:
        head = torch.nn.Linear(table.shape[1], classes)
        params += list(head.parameters())
    opt = torch.optim.Adam(params, lr=s["lr"])
    ids, mask, target = (torch.from_numpy(np.asarray(a)) for a in data.train)
    target = target.float()
    labels = torch.from_numpy(data.train_labels) if data.train_labels is not None else None

    def snapshot() -> StaticStudent:
        h = (
            (None, None)
            if head is None
            else (head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy())
        )
        return StaticStudent(table.detach().numpy().copy(), student.weights, *h)

    best = snapshot()
    best_val = _score(best, *data.val, data.val_labels)
    res = TuneResult(best_val, 0, 0, [{"epoch": 0, "val": best_val}])
    order = list(range(len(ids)))
    for epoch in range(1, s["epochs"] + 1):
        random.Random(s["seed"] * 1_000_003 + epoch).shuffle(order)
        for i in range(0, len(order), s["batch_size"]):
            idx = torch.tensor(order[i : i + s["batch_size"]])
            length = int(mask[idx].sum(1).max())  # the batch's longest text, not the split's
            v = _pooled(table, weights, ids[idx, :length], mask[idx, :length])
            loss = _loss(v, target[idx], None if labels is None else labels[idx], head, s)
            opt.zero_grad()
            loss.backward()
            opt.step()
        current = snapshot()
        val = _score(current, *data.val, data.val_labels)
        res.curve.append({"epoch": epoch, "val": val, "loss": float(loss.detach())})
        res.epochs_run = epoch
        if val > res.best_val:
            best, res.best_val, res.best_epoch = current, val, epoch
        elif epoch - res.best_epoch >= s["patience"]:
            break
    return best, res


def _loss(v, target, labels, head, s):
    import torch
    import torch.nn.functional as F

    w = s["weights"]
    if head is None:
        t = F.normalize(target, dim=-1)
        loss = w.get("embedding_cosine", 0.0) * (1 - (v * t).sum(-1)).mean()
        return loss + w.get("embedding_mse", 0.0) * F.mse_loss(v, t)
    logits, temp = head(v), s["temperature"]
    loss = torch.zeros(())
    if w.get("logits_kd"):
        kd = F.kl_div(
            F.log_softmax(logits / temp, -1),
            F.log_softmax(target / temp, -1),
            log_target=True,
            reduction="batchmean",
        )
        loss = loss + w["logits_kd"] * kd * temp * temp
    if w.get("label_ce") and labels is not None:
        loss = loss + w["label_ce"] * F.cross_entropy(logits, labels)
    return loss

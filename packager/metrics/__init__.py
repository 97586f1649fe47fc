"""Task metrics of model outputs (numpy in, floats out), shared by evaluation and reports.

Classifiers: accuracy and macro-F1 over the class axis. Embedding models: the mean cosine of each
student embedding to the teacher's, and top-k nearest-neighbour agreement on a retrieval set: for
every text, how many of its k nearest neighbours under the teacher's embeddings are also among
the student's.
"""

from __future__ import annotations

import numpy as np


def classification_metrics(
    y_true: np.ndarray, logits: np.ndarray, num_classes: int
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    pred = logits[:, :num_classes].argmax(-1)
    return {
        "accuracy": float((pred == y_true).mean()),
        "macro_f1": float(f1_score(y_true, pred, average="macro", labels=list(range(num_classes)))),
    }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def embedding_metrics(student: np.ndarray, teacher: np.ndarray, k: int) -> dict[str, float]:
    """Mean cosine to the teacher and top-k neighbour agreement (each text excluded from its own
    neighbours)."""
    s, t = _unit(student.astype(np.float64)), _unit(teacher.astype(np.float64))
    k = min(k, len(t) - 1)

    def neighbours(e: np.ndarray) -> np.ndarray:
        sim = e @ e.T
        np.fill_diagonal(sim, -np.inf)
        return np.argpartition(-sim, k - 1, axis=1)[:, :k]

    ns, nt = neighbours(s), neighbours(t)
    overlap = [len(set(a) & set(b)) / k for a, b in zip(ns, nt, strict=True)]
    return {"cosine": float((s * t).sum(1).mean()), f"top{k}_agreement": float(np.mean(overlap))}


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis (the classes of (N, C) logits, or one vector), float64."""
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def agreement_metrics(logits: np.ndarray, ref: np.ndarray, prefix: str = "") -> dict[str, float]:
    """How faithfully `logits` follow the reference model's `ref` on the same inputs: top-1
    agreement (same top class), top-5 agreement (the reference's top class is among the top 5)
    and the mean KL(ref || logits) of their softmaxes, in nats."""
    top1 = ref.argmax(-1)
    k = min(5, logits.shape[1])
    top5 = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    lp, lq = log_softmax(ref), log_softmax(logits)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=1).mean()
    return {
        f"{prefix}agreement": float((logits.argmax(-1) == top1).mean()),
        f"{prefix}top5_agreement": float((top5 == top1[:, None]).any(axis=1).mean()),
        f"{prefix}kl": float(kl),
    }


def topk_accuracy(y_true: np.ndarray, logits: np.ndarray, k: int = 5) -> float:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean())

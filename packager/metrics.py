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

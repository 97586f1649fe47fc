"""evaluate for text models (called by the evaluate stage for text data), all in onnxruntime.

Classifiers: accuracy and macro-F1 on the test split. Embedding models: for each student
variant, the mean cosine between its embedding and the teacher's on held-out text, and top-k
nearest-neighbour agreement on a retrieval set (the test split): for every text, how many of
its k nearest neighbours under the teacher's embeddings are also among the student's.
"""

from __future__ import annotations

import numpy as np

from packager.recipe import EvaluateConfig
from packager.stage import Output, StageContext
from packager.stages.evaluate import checked_output, classification_metrics, variant_models


def run_texts(path, tok, texts: list[str], batch: int = 64) -> np.ndarray:
    """The model's first output for every text, batched by length, in input order."""
    from packager.data.text import encode
    from packager.onnx_utils import session

    sess = session(path, threads=2)
    names = [i.name for i in sess.get_inputs()]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = [
        sess.run(None, encode(tok, [texts[j] for j in order[i : i + batch]], names))[0]
        for i in range(0, len(order), batch)
    ]
    out = np.concatenate(parts)
    result = np.empty_like(out)
    result[order] = out
    return result


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


def evaluate_text(cfg: EvaluateConfig, ctx: StageContext) -> Output:
    from packager.data.text import load_tokenizer, read_split

    data = ctx.inputs["data"]
    task = ctx.recipe.task
    texts, y = read_split(data, "test")
    tok = load_tokenizer(ctx.inputs["export"].path, data.meta["max_length"])
    outputs = {
        label: run_texts(art.file(), tok, texts) for label, art in variant_models(ctx).items()
    }
    metrics: dict[str, dict[str, float]] = {}
    if task == "text-classification":
        key = "accuracy"
        for label, logits in outputs.items():
            metrics[label] = classification_metrics(y, logits, len(data.meta["labels"]))
    else:
        key = "cosine"
        for label, emb in outputs.items():
            metrics[label] = embedding_metrics(emb, outputs["teacher_fp32"], cfg.top_k)
    for label, m in metrics.items():
        ctx.log(f"{label}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    what = "test split" if key == "accuracy" else "held-out test split (cosine to the teacher)"
    dataset = f"{data.meta['source']} {what} ({len(texts)} texts)"
    floor = cfg.min_accuracy if key == "accuracy" else cfg.min_cosine
    return checked_output(cfg, ctx, metrics, key, floor, dataset)

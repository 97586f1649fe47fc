"""Language-model metrics in onnxruntime, every variant on the same held-out sequences: the
perplexity of each, and against the teacher the next-token top-1 agreement and the mean
KL(teacher || variant) over every held-out position. Sequences are streamed: one sequence
of every variant's logits is in memory at a time (a 150k-word vocabulary is 600 KB a position)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from packager.metrics import log_softmax


def lm_metrics(
    models: dict[str, Path], ids: np.ndarray, reference: str = "teacher_fp32"
) -> dict[str, dict[str, float]]:
    """Per variant: perplexity, top1_agreement and mean_kl (vs `reference`) on `ids` (n, L)."""
    from packager.edge_runtime import load_runtime
    from packager.onnx_utils import session

    gen = load_runtime().generation
    decoders = {label: gen.Decoder(session(path, threads=2)) for label, path in models.items()}
    sums = {label: {"nll": 0.0, "agree": 0.0, "kl": 0.0} for label in models}
    positions = 0
    for row in ids:
        logp: dict[str, np.ndarray] = {}
        for label, dec in decoders.items():
            dec.reset(1)
            logits = dec.forward(row[None], keep_all=True).all_logits[0, :-1]
            logp[label] = log_softmax(logits)
        targets = row[1:]
        ref = logp[reference]
        top = ref.argmax(-1)
        p_ref = np.exp(ref)
        for label, lp in logp.items():
            s = sums[label]
            s["nll"] -= float(lp[np.arange(len(targets)), targets].sum())
            s["agree"] += float((lp.argmax(-1) == top).sum())
            s["kl"] += float((p_ref * (ref - lp)).sum())
        positions += len(targets)
    return {
        label: {
            "perplexity": float(np.exp(s["nll"] / positions)),
            "top1_agreement": s["agree"] / positions,
            "mean_kl": s["kl"] / positions,
            "positions": positions,
        }
        for label, s in sums.items()
    }


def gate_failures(
    metrics: dict[str, dict[str, Any]], shipped: str, max_ppl_ratio, min_agreement
) -> list[str]:
    """The evaluate gates that the shipped variant misses, each as one sentence."""
    m, t = metrics[shipped], metrics["teacher_fp32"]
    out = []
    ratio = m["perplexity"] / t["perplexity"]
    if max_ppl_ratio is not None and ratio > max_ppl_ratio:
        out.append(
            f"{shipped} perplexity {m['perplexity']:.2f} is {ratio:.2f}x the teacher's "
            f"{t['perplexity']:.2f}, over evaluate.max_ppl_ratio = {max_ppl_ratio:g}"
        )
    if min_agreement is not None and m["top1_agreement"] < min_agreement:
        out.append(
            f"{shipped} top-1 agreement with the teacher {m['top1_agreement']:.4f} is below "
            f"evaluate.min_agreement = {min_agreement:g}"
        )
    return out

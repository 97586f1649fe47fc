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
    """Per variant: perplexity, top1_agreement and mean_kl (vs `reference`) on `ids` (n, L).
    A graph whose head computes the last position only is measured through its all-positions
    view (packager.export.lm_graph); variants that are one file are run once."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lm-metrics-") as tmp:
        return _lm_metrics(models, ids, reference, Path(tmp))


def _lm_metrics(
    models: dict[str, Path], ids: np.ndarray, reference: str, tmp: Path
) -> dict[str, dict[str, float]]:
    from packager.edge_runtime import load_runtime
    from packager.export.lm_graph import all_positions
    from packager.onnx_utils import session

    gen = load_runtime().generation
    decoders: dict[Path, Any] = {}
    for path in dict.fromkeys(Path(p) for p in models.values()):
        view = tmp / f"{len(decoders)}.onnx"
        decoders[path] = gen.Decoder(
            session(view if all_positions(path, view) else path, threads=2)
        )
    sums = {label: {"nll": 0.0, "agree": 0.0, "kl": 0.0} for label in models}
    positions = 0
    for row in ids:
        by_path: dict[Path, np.ndarray] = {}
        for path, dec in decoders.items():
            dec.reset(1)
            logits = dec.forward(row[None], keep_all=True).all_logits[0, :-1]
            by_path[path] = log_softmax(logits)
        logp = {label: by_path[Path(path)] for label, path in models.items()}
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
    ratio = m["perplexity"] / t["perplexity"] if t.get("perplexity") else None
    if max_ppl_ratio is not None and ratio is not None and ratio > max_ppl_ratio:
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


def api_lm_metrics(
    models: dict[str, Path], completions: list[dict[str, Any]], encode
) -> dict[str, dict[str, float]]:
    """Every variant against a teacher only called, on the completions it wrote for held-out
    prompts: each student's perplexity of that text (teacher-forced, on the completion's
    tokens) and its next-token top-1 agreement with the token the teacher wrote; the teacher's
    own perplexity of it from the log-probabilities it returned (None when it returned none).
    `encode`: the students' tokenizer (text -> ids)."""
    import tempfile

    from packager.edge_runtime import load_runtime
    from packager.export.lm_graph import all_positions
    from packager.onnx_utils import session

    gen = load_runtime().generation
    sums = {label: {"nll": 0.0, "agree": 0} for label in models}
    positions = 0
    with tempfile.TemporaryDirectory(prefix="lm-metrics-") as tmp:
        decoders = {}
        for label, path in models.items():
            view = Path(tmp) / f"{label}.onnx"
            decoders[label] = gen.Decoder(
                session(view if all_positions(Path(path), view) else path, threads=2)
            )
        for row in completions:
            start = len(encode(row["prompt"]))
            ids = np.asarray(encode(row["prompt"] + row["completion"]), np.int64)
            if len(ids) <= start or start == 0:
                continue
            targets = ids[start:]
            for label, dec in decoders.items():
                dec.reset(1)
                logits = dec.forward(ids[None], keep_all=True).all_logits[0, start - 1 : -1]
                lp = log_softmax(logits)
                sums[label]["nll"] -= float(lp[np.arange(len(targets)), targets].sum())
                sums[label]["agree"] += int((lp.argmax(-1) == targets).sum())
            positions += len(targets)
    out = {
        label: {
            "perplexity": float(np.exp(s["nll"] / max(positions, 1))),
            "top1_agreement": s["agree"] / max(positions, 1),
            "positions": positions,
        }
        for label, s in sums.items()
    }
    said = [lp for row in completions for lp in (row.get("token_logprobs") or [])]
    teacher = {"perplexity": float(np.exp(-np.mean(said))) if said else None}
    return {"teacher_fp32": teacher | {"top1_agreement": 1.0, "positions": len(said)}, **out}

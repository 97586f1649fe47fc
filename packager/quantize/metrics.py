"""Task metrics of a model on evaluation batches, always against the fp32 model's outputs.

Every metric is "higher is better", so drop = fp32 metric - quantized metric.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from packager.errors import InputFileError
from packager.quantize.data import Batch


def first_outputs(model: Path, batches: list[Batch]) -> np.ndarray:
    """The model's first output over every batch, as float32, concatenated."""
    from packager.onnx_utils import session

    sess = session(model)
    return np.concatenate(
        [np.asarray(sess.run(None, feeds)[0], dtype=np.float32) for feeds, _ in batches]
    )


def labels_of(batches: list[Batch]) -> np.ndarray | None:
    if any(labels is None for _, labels in batches):
        return None
    return np.concatenate([labels for _, labels in batches])


def check_metric(metric: str, batches: list[Batch], where: str) -> None:
    if metric == "accuracy" and labels_of(batches) is None:
        raise InputFileError(
            f"{where}: metric accuracy needs labels (y / label) in the evaluation data; "
            "use metric agreement or cosine to compare with the fp32 model instead"
        )


def score(metric: str, out: np.ndarray, ref: np.ndarray, labels: np.ndarray | None) -> float:
    """`out` scored by `metric`; `ref` is the fp32 model's output on the same examples."""
    if metric == "cosine":
        a, b = out.reshape(len(out), -1), ref.reshape(len(ref), -1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return float(np.mean((a * b).sum(1) / np.maximum(den, 1e-12)))
    pred = out.reshape(len(out), -1).argmax(-1)
    if metric == "agreement":
        return float((pred == ref.reshape(len(ref), -1).argmax(-1)).mean())
    return float((pred == labels).mean())


class Evaluator:
    """Scores models on fixed batches, with the fp32 reference computed once."""

    def __init__(self, fp32: Path, batches: list[Batch], metric: str):
        self.batches, self.metric = batches, metric
        self.labels = labels_of(batches)
        self.ref = first_outputs(fp32, batches)
        self.fp32 = score(metric, self.ref, self.ref, self.labels)
        self.examples = len(self.ref)

    def __call__(self, model: Path) -> float:
        return score(self.metric, first_outputs(model, self.batches), self.ref, self.labels)

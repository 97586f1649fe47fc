"""Task metrics of a model on evaluation batches, always against the fp32 model's outputs.

Each metric fits one kind of output (the model's first output, batch first):

    accuracy   top-1 over the class axis vs the labels                 classifiers (N, C)
    top5       labels among the 5 largest over the class axis          classifiers (N, C)
    agreement  top-1 over the class axis vs fp32's, at every position  classifiers, per-pixel maps
    sequence   share of examples whose top-1 path over the class axis
               matches fp32's at every timestep                        recognizers (N, T, C)
    cosine     mean per-example cosine similarity to fp32              embeddings, maps
    mse        mean squared error to fp32 (lower is better)            embeddings, maps
    iou        mean per-example IoU of (output > t) vs (fp32 > t)      detection/segmentation maps

The drop is what quantization lost: fp32 - quantized for the others, quantized - fp32 for mse.
A metric that does not fit the output (a class axis of size 1, labels that do not match it) is
refused with a message naming the ones that do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from packager.errors import InputFileError
from packager.quantize.data import Batch

LOWER_IS_BETTER = frozenset({"mse"})
_CLASS_METRICS = ("accuracy", "top5", "agreement", "sequence")


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


def resolve_class_axis(class_axis: int | None, ndim: int) -> int:
    """The class axis asked for, or by convention: channels of 4-D+ (NCHW) maps, else last."""
    if class_axis is not None:
        return class_axis
    return 1 if ndim >= 4 else -1


def check_metric(
    metric: str, batches: list[Batch], where: str, ref: np.ndarray, class_axis: int = -1
) -> None:
    """Refuse a metric that does not fit the fp32 output `ref` (or lacks its labels)."""
    shape = list(ref.shape)
    shown = f"the model's first output has shape {shape}"
    if metric in ("accuracy", "top5") and labels_of(batches) is None:
        raise InputFileError(
            f"{where}: metric {metric} needs labels (y / label) in the evaluation data; "
            "use agreement, sequence, cosine, mse or iou to compare with the fp32 model instead"
        )
    if metric in _CLASS_METRICS:
        if ref.ndim < 2 or not -ref.ndim < class_axis < ref.ndim or class_axis % ref.ndim == 0:
            raise InputFileError(
                f"{where}: metric {metric} needs a class axis besides the batch: {shown} "
                f"(class_axis {class_axis}); use cosine, mse or iou"
            )
        classes = shape[class_axis]
        if classes < 2 or (metric == "top5" and classes <= 5):
            need = "more than 5" if metric == "top5" else "at least 2"
            raise InputFileError(
                f"{where}: metric {metric} needs {need} classes along class_axis {class_axis}, "
                f"but {shown}: for maps use iou, cosine or mse"
            )
    if metric == "sequence" and ref.ndim < 3:
        raise InputFileError(
            f"{where}: metric sequence needs per-timestep outputs (batch, time, classes), but "
            f"{shown}; use agreement for one label per example"
        )
    labels = labels_of(batches) if metric in ("accuracy", "top5") else None
    if labels is not None:
        want = [s for i, s in enumerate(shape) if i != class_axis % ref.ndim]
        if list(labels.shape) != want:
            raise InputFileError(
                f"{where}: labels have shape {list(labels.shape)}, but {shown}: one label per "
                f"position of the output without its class axis would be {want}"
            )


def score(
    metric: str,
    out: np.ndarray,
    ref: np.ndarray,
    labels: np.ndarray | None,
    *,
    class_axis: int = -1,
    threshold: float = 0.5,
) -> float:
    """`out` scored by `metric`; `ref` is the fp32 model's output on the same examples."""
    n = len(out)
    if metric == "cosine":
        a, b = out.reshape(n, -1), ref.reshape(n, -1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return float(np.mean((a * b).sum(1) / np.maximum(den, 1e-12)))
    if metric == "mse":
        return float(np.mean((out.astype(np.float64) - ref) ** 2))
    if metric == "iou":
        a, b = out.reshape(n, -1) > threshold, ref.reshape(n, -1) > threshold
        inter, union = (a & b).sum(1), (a | b).sum(1)
        return float(np.mean(np.where(union == 0, 1.0, inter / np.maximum(union, 1))))
    pred = out.argmax(class_axis)
    if metric == "accuracy":
        return float((pred == labels).mean())
    if metric == "top5":
        top = np.argsort(-out, axis=class_axis).take(range(5), axis=class_axis)
        hits = top == np.expand_dims(labels, class_axis % out.ndim)
        return float(hits.any(class_axis).mean())
    same = pred == ref.argmax(class_axis)
    if metric == "sequence":
        return float(same.reshape(n, -1).all(1).mean())
    return float(same.mean())  # agreement


class Evaluator:
    """Scores models on fixed batches, with the fp32 reference computed once; refuses a metric
    that does not fit the model's output before anything is quantized."""

    def __init__(
        self,
        fp32: Path,
        batches: list[Batch],
        metric: str,
        *,
        where: str = "evaluation data",
        class_axis: int | None = None,
        threshold: float = 0.5,
    ):
        self.batches, self.metric = batches, metric
        self.labels = labels_of(batches)
        self.ref = first_outputs(fp32, batches)
        axis = resolve_class_axis(class_axis, self.ref.ndim)
        self.options = {"class_axis": axis, "threshold": threshold}
        check_metric(metric, batches, where, self.ref, axis)
        self.fp32 = score(metric, self.ref, self.ref, self.labels, **self.options)
        self.examples = len(self.ref)
        # What the accuracy search steers by when the metric is top-1 agreement with fp32 on
        # (N, C) outputs: the mean KL(fp32 || quantized), of which agreement is the step
        # function. Agreement moves in steps of 1/N, and on fp32's own near ties by chance; the
        # KL moves with every logit, so a node put back in float is judged by all it changed.
        # (Accuracy and top5 are budgets on labels, which the KL to fp32 does not measure.)
        self.guide = "kl" if metric == "agreement" and self.ref.ndim == 2 else None

    def __call__(self, model: Path) -> float:
        return self.scores(model)[0]

    def scores(self, model: Path) -> tuple[float, float | None]:
        """(the metric, the guide or None), from one run of `model` on the batches."""
        out = first_outputs(model, self.batches)
        value = score(self.metric, out, self.ref, self.labels, **self.options)
        return value, (mean_kl(out, self.ref) if self.guide else None)

    def drop(self, value: float) -> float:
        """What quantization lost on this metric (positive is worse)."""
        return value - self.fp32 if self.metric in LOWER_IS_BETTER else self.fp32 - value


def mean_kl(out: np.ndarray, ref: np.ndarray) -> float | None:
    """Mean KL(ref || out) over rows of (N, C) outputs, in nats: of their softmaxes, or of the
    rows themselves where both are already probabilities (a model ending in Softmax). None
    where it is not finite (masked classes at -inf): the search then goes by the drop."""
    from packager.metrics import log_softmax

    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)

    def is_prob(x: np.ndarray) -> bool:
        return bool((x >= 0).all() and np.allclose(x.sum(1), 1.0, atol=1e-3))

    if is_prob(ref) and is_prob(out):
        p, q = np.clip(ref, 1e-12, None), np.clip(out, 1e-12, None)
        lp, lq = np.log(p / p.sum(1, keepdims=True)), np.log(q / q.sum(1, keepdims=True))
    else:
        lp, lq = log_softmax(ref), log_softmax(out)
    with np.errstate(invalid="ignore"):
        kl = float((np.exp(lp) * (lp - lq)).sum(1).mean())
    return kl if np.isfinite(kl) else None

"""Model outputs -> a Prediction, as the manifest's "postprocessing" block describes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidPackageError, UnsupportedPackageError


@dataclass
class Prediction:
    """What predict returns: raw outputs always; the classification fields for classifiers.

    Row i of each classification field is the answer for sample i of the batch.
    """

    outputs: dict[str, np.ndarray]
    labels: list[str] | None = None  # top-1 label per row
    indices: np.ndarray | None = None  # top-1 class index per row, shape (N,)
    probabilities: np.ndarray | None = None  # class probabilities, shape (N, classes)
    scores: np.ndarray | None = None  # top-1 probability per row, shape (N,)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64, shifted by the row max so exp never overflows."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def package_labels(manifest: Mapping[str, Any]) -> list[str]:
    """Class names: postprocessing.labels, else the top-level labels, else none."""
    post = manifest.get("postprocessing") or {}
    labels = post.get("labels", manifest.get("labels"))
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise InvalidPackageError("manifest.json: labels must be a list of strings")
    return list(labels)


class ClassificationPostprocessor:
    """type "classification": top-1 label, index and score per row of one (N, classes) output."""

    def __init__(self, spec: Mapping[str, Any], manifest: Mapping[str, Any]) -> None:
        outputs = {o["name"]: o for o in manifest["outputs"]}
        self.output: str = spec.get("output", manifest["outputs"][0]["name"])
        if self.output not in outputs:
            raise InvalidPackageError(
                f"manifest.json: postprocessing.output {self.output!r} is not a model output "
                f"{sorted(outputs)}"
            )
        self.activation = spec.get("activation", "softmax")
        if self.activation not in ("softmax", "none"):
            raise UnsupportedPackageError(
                f"postprocessing.activation {self.activation!r} is not supported "
                "(supported: softmax, none)"
            )
        self.labels = package_labels(manifest)
        classes = outputs[self.output]["shape"][-1:]
        if self.labels and classes and isinstance(classes[0], int):
            self._check_count(classes[0])

    def _check_count(self, classes: int) -> None:
        if len(self.labels) != classes:
            raise InvalidPackageError(
                f"manifest.json: {len(self.labels)} labels for {classes} classes "
                f"in output {self.output!r}"
            )

    def __call__(self, outputs: dict[str, np.ndarray]) -> Prediction:
        scores = np.asarray(outputs[self.output])
        if scores.ndim == 1:
            scores = scores[None, :]
        if scores.ndim != 2:
            raise UnsupportedPackageError(
                f"classification expects output {self.output!r} shaped (batch, classes), "
                f"got {scores.shape}"
            )
        if self.labels:
            self._check_count(scores.shape[1])
        probs = softmax(scores) if self.activation == "softmax" else scores
        indices = probs.argmax(axis=1)
        names = self.labels or [str(i) for i in range(scores.shape[1])]
        return Prediction(
            outputs=outputs,
            labels=[names[i] for i in indices],
            indices=indices,
            probabilities=probs,
            scores=probs[np.arange(len(indices)), indices],
        )


class NonePostprocessor:
    """type "none": the raw outputs are the answer (e.g. embeddings)."""

    def __call__(self, outputs: dict[str, np.ndarray]) -> Prediction:
        return Prediction(outputs=outputs)


Postprocessor = ClassificationPostprocessor | NonePostprocessor


def make_postprocessor(manifest: Mapping[str, Any]) -> Postprocessor:
    """Build the postprocessor for a validated manifest; a package without the block is "none"."""
    spec = manifest.get("postprocessing") or {"type": "none"}
    kind = spec.get("type")
    if kind == "classification":
        return ClassificationPostprocessor(spec, manifest)
    if kind == "none":
        return NonePostprocessor()
    raise UnsupportedPackageError(
        f"postprocessing type {kind!r} is not supported (supported: classification, none)"
    )

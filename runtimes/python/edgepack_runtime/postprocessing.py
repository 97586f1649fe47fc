"""Model outputs -> a Prediction, as the manifest's "postprocessing" block describes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidPackageError, UnsupportedPackageError


@dataclass
class Prediction:
    """What predict returns: raw outputs always; the classification fields for classifiers,
    `embeddings` for feature-extraction models.

    Row i of each field is the answer for sample i of the batch.
    """

    outputs: dict[str, np.ndarray]
    labels: list[str] | None = None  # top-1 label per row
    indices: np.ndarray | None = None  # top-1 class index per row, shape (N,)
    probabilities: np.ndarray | None = None  # class probabilities, shape (N, classes)
    scores: np.ndarray | None = None  # top-1 probability per row, shape (N,)
    embeddings: np.ndarray | None = None  # one vector per row, shape (N, dim), float32


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

    def __call__(self, outputs: dict[str, np.ndarray], feeds: Mapping | None = None) -> Prediction:
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


class EmbeddingPostprocessor:
    """type "embedding": one vector per text.

    Fields: "output"; "pooling" ("mean" over real tokens, "cls" = first token, or "none");
    "normalize" (L2); "in_graph" (default true): pooling and normalisation are already nodes of
    the model, whose output is the embedding, so nothing is recomputed here. With in_graph
    false the output is (batch, tokens, dim) and pooling "mean" uses the attention_mask feed.
    """

    def __init__(self, spec: Mapping[str, Any], manifest: Mapping[str, Any]) -> None:
        outputs = {o["name"] for o in manifest["outputs"]}
        self.output: str = spec.get("output", manifest["outputs"][0]["name"])
        if self.output not in outputs:
            raise InvalidPackageError(
                f"manifest.json: postprocessing.output {self.output!r} is not a model output "
                f"{sorted(outputs)}"
            )
        self.in_graph = spec.get("in_graph", True)
        self.pooling = spec.get("pooling", "none")
        self.normalize = spec.get("normalize", False)
        if not isinstance(self.in_graph, bool) or not isinstance(self.normalize, bool):
            raise InvalidPackageError(
                "manifest.json: postprocessing.in_graph and .normalize must be booleans"
            )
        if self.pooling not in ("mean", "cls", "none", None):
            raise UnsupportedPackageError(
                f"postprocessing.pooling {self.pooling!r} is not supported (supported: mean, cls)"
            )

    def __call__(self, outputs: dict[str, np.ndarray], feeds: Mapping | None = None) -> Prediction:
        x = np.asarray(outputs[self.output], dtype=np.float32)
        if not self.in_graph:
            if self.pooling == "cls":
                x = x[:, 0]
            elif self.pooling == "mean":
                if feeds is None or "attention_mask" not in feeds:
                    raise UnsupportedPackageError("mean pooling needs the attention_mask feed")
                m = np.asarray(feeds["attention_mask"], dtype=np.float32)[..., None]
                x = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            if self.normalize:
                x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        if x.ndim != 2:
            raise UnsupportedPackageError(
                f"embedding output {self.output!r} should be (batch, dim), got shape {x.shape}"
            )
        return Prediction(outputs=outputs, embeddings=x)


class NonePostprocessor:
    """type "none": the raw outputs are the answer."""

    def __call__(self, outputs: dict[str, np.ndarray], feeds: Mapping | None = None) -> Prediction:
        return Prediction(outputs=outputs)


Postprocessor = ClassificationPostprocessor | EmbeddingPostprocessor | NonePostprocessor


def make_postprocessor(manifest: Mapping[str, Any]) -> Postprocessor:
    """Build the postprocessor for a validated manifest; a package without the block is "none"."""
    spec = manifest.get("postprocessing") or {"type": "none"}
    kind = spec.get("type")
    if kind == "classification":
        return ClassificationPostprocessor(spec, manifest)
    if kind == "embedding":
        return EmbeddingPostprocessor(spec, manifest)
    if kind == "none":
        return NonePostprocessor()
    raise UnsupportedPackageError(
        f"postprocessing type {kind!r} is not supported (supported: classification, embedding, none)"
    )

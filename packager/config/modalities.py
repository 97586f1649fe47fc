"""The modalities, declared once: what kind of data a build learns from and ships for.

A modality names the data stage's reader, the preprocessing a package records (what every
runtime repeats from the raw input), the tasks it serves and the sources it reads. A recipe's
modality comes from one rule (`modality_of`); the data stage records it on its artifact and
every later stage picks its handler by it (packager.stage.Handlers), so a stage that has no
handler for a registered modality says so in words. Adding one is docs/architecture.md's
"Adding a modality".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARRAY_SUFFIXES = (".npz", ".npy")


@dataclass(frozen=True)
class Modality:
    name: str
    summary: str  # one line, for errors and the docs
    preprocessing: str  # the manifest's preprocessing type every runtime applies
    tasks: tuple[str, ...]  # the recipe tasks it serves
    sources: str  # what data.source it reads, for the error when another is given
    reads: Callable[[Any], bool]  # (data config) -> whether this modality can read its source


def _array_source(data: Any) -> bool:
    return data.source.startswith("builtin:") or Path(data.source).suffix in ARRAY_SUFFIXES


def _not_array_source(data: Any) -> bool:
    return not data.source.startswith("builtin:") and Path(data.source).suffix not in ARRAY_SUFFIXES


MODALITIES: dict[str, Modality] = {}


def register_modality(m: Modality) -> Modality:
    if m.name in MODALITIES and MODALITIES[m.name] is not m:
        raise ValueError(f"modality {m.name!r} is registered already")
    MODALITIES[m.name] = m
    return m


register_modality(
    Modality(
        "array",
        "tensors (builtin:digits, .npz/.npy) with the tensor formula (scale, mean, std)",
        preprocessing="tensor",
        tasks=("image-classification", "classification"),
        sources="builtin:NAME or a .npz/.npy file",
        reads=_array_source,
    )
)
register_modality(
    Modality(
        "image",
        "image files decoded, resized, cropped and normalised as every runtime does",
        preprocessing="image",
        tasks=("image-classification",),
        sources="a folder of images, a .npz/.npy of images or a save_to_disk folder",
        reads=lambda data: True,
    )
)
register_modality(
    Modality(
        "text",
        "text rows tokenised with the teacher's tokenizer (classification or embeddings)",
        preprocessing="text",
        tasks=("text-classification", "feature-extraction"),
        sources="a .txt/.jsonl/.csv/.parquet file or a save_to_disk folder",
        reads=_not_array_source,
    )
)
register_modality(
    Modality(
        "lm",
        "text for a causal language model: plain text or prompt/completion rows",
        preprocessing="none",
        tasks=("text-generation",),
        sources="a .txt/.jsonl/.csv/.parquet file or a save_to_disk folder",
        reads=_not_array_source,
    )
)


def modality_of(task: str, data: Any) -> str:
    """The one rule: a data.image section makes image data; otherwise the task decides (a
    language model's text is `lm`, a text task's `text`, anything else arrays)."""
    if getattr(data, "image", None) is not None:
        return "image"
    for m in MODALITIES.values():
        if task in m.tasks and m.name != "image":
            return m.name
    return "array"

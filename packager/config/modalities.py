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


# The data: fields every modality reads (where the data is, how it splits).
COMMON_DATA = ("source", "val_fraction", "test_fraction", "seed", "limit")


@dataclass(frozen=True)
class Modality:
    name: str
    summary: str  # one line, for errors and the docs
    preprocessing: str  # the manifest's preprocessing type every runtime applies
    tasks: tuple[str, ...]  # the recipe tasks it serves
    sources: str  # what data.source it reads, for the error when another is given
    reads: Callable[[Any], bool]  # (data config) -> whether this modality can read its source
    # Its data config: the `data:` fields it reads besides COMMON_DATA; a recipe that sets
    # another modality's field is refused when it loads.
    data_fields: tuple[str, ...] = ()


def stray_data_fields(modality: str, data: Any) -> list[str]:
    """The `data:` fields set away from their defaults that `modality` does not read."""
    takes = {*COMMON_DATA, *MODALITIES[modality].data_fields}
    fields = type(data).model_fields
    return [n for n, f in fields.items() if n not in takes and getattr(data, n) != f.default]


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
        data_fields=(
            "labels_file",
            "label_names",
            "sample_shape",
            "scale",
            "offset",
            "mean",
            "std",
        ),
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
        data_fields=(
            "image",
            "image_column",
            "views",
            "label_column",
            "labels_file",
            "label_names",
        ),
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
        data_fields=(
            "text_column",
            "label_column",
            "label_names",
            "max_length",
            "stream_batch",
            "eval_limit",
            "augment",
        ),
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
        data_fields=(
            "text_column",
            "max_length",
            "stream_batch",
            "eval_limit",
            "prompt_column",
            "completion_column",
            "completions_by",
        ),
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

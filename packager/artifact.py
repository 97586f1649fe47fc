"""What flows between stages: a finished `Artifact` on disk and the `Output` a stage returns.

A leaf: it imports nothing of edgepack, so every part (runner, stages, tests) can name it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTIFACT_FILE = "artifact.json"
# The ONNX model variants a build compares, in report order; plans map build steps onto these
# input roles, and evaluate / bench / package read them by these names. The quantized student
# is named in metrics and reports by its precision (variant_label: student_int8, student_int4).
QUANTIZED = "student_quantized"
VARIANTS = ("teacher_fp32", "student_fp32", QUANTIZED)


def variant_label(role: str, meta: dict[str, Any]) -> str:
    """How a variant is named in metrics, reports and manifests: the quantized student by the
    precision its scheme wrote (student_int8, student_fp16, student_int4)."""
    if role == QUANTIZED:
        return f"student_{meta.get('precision') or 'quantized'}"
    return role


@dataclass(frozen=True)
class Artifact:
    """A finished stage output on disk: a folder, its kind, its content id and metadata."""

    path: Path
    kind: str
    id: str
    meta: dict[str, Any] = field(default_factory=dict)

    def file(self, name: str | None = None) -> Path:
        """A file inside the artifact; without a name, the artifact's main file."""
        return self.path / (name or self.meta["file"])

    @property
    def modality(self) -> str:
        """The modality a data artifact records (packager.config.modalities): the data stage
        writes it from the recipe's one rule, and every later stage picks its handler by its
        data input's."""
        try:
            return str(self.meta["modality"])
        except KeyError:
            raise LookupError(f"artifact {self.path.name} records no modality") from None

    @classmethod
    def read(cls, folder: Path) -> Artifact:
        rec = json.loads((folder / ARTIFACT_FILE).read_text())
        return cls(path=folder, kind=rec["kind"], id=rec["id"], meta=rec.get("meta", {}))


@dataclass
class Output:
    """What a stage function returns; the runner turns it into an Artifact."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)

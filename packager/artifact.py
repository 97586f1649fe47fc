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
# input roles, and evaluate / bench / package read them by these names.
VARIANTS = ("teacher_fp32", "student_fp32", "student_int8")


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
        """ "text", "image", "array" or "lm": which handler of a stage serves this input. The one
        test for it: data artifacts, image models and language models record it, other
        transformers folders ("hf") are text, everything else arrays."""
        return self.meta.get("modality") or ("text" if self.kind == "hf" else "array")

    @classmethod
    def read(cls, folder: Path) -> Artifact:
        rec = json.loads((folder / ARTIFACT_FILE).read_text())
        return cls(path=folder, kind=rec["kind"], id=rec["id"], meta=rec.get("meta", {}))


@dataclass
class Output:
    """What a stage function returns; the runner turns it into an Artifact."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)

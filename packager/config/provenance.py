"""Where the student comes from and what may be distilled: the `provenance:` section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from packager.config.base import Config
from packager.config.sources import DataConfig, TeacherConfig


class SourceFacts(Config):
    """What the recipe says about a teacher or a data source that its files cannot say."""

    id: str | None = Field(
        None,
        description="its Hugging Face Hub id (base_model / datasets in the model card), e.g. "
        "sentence-transformers/all-MiniLM-L6-v2",
    )
    license: str | None = Field(
        None,
        description="its license id (apache-2.0, llama3, cc-by-4.0, ...) when its files carry "
        "none; a license found in the files wins and a disagreement is reported",
    )


class ProvenanceConfig(Config):
    policy: Literal["warn", "strict"] = Field(
        "warn",
        description="a teacher whose terms restrict distillation, or whose license is unknown: "
        "warn, or stop the build (exit 2) until its terms are accepted",
    )
    accept_terms: tuple[str, ...] = Field(
        (),
        description="terms ids accepted for this build (edgepack build --accept-terms ID adds "
        "to it), e.g. [llama3]; recorded in the manifest and the model card",
    )
    naming: Literal["apply", "report"] = Field(
        "apply",
        description="naming duties (Llama 3.1+: 'Llama' at the start of the model's name): "
        "apply them to the package name, or only report them",
    )
    teacher: SourceFacts = SourceFacts()
    data: SourceFacts = SourceFacts()

    @field_validator("accept_terms", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v

    @field_validator("accept_terms")
    @classmethod
    def _lower(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # Ids are matched case-insensitively; sorted without repeats, so equal sets key alike.
        return tuple(sorted({t.strip().lower() for t in v if t.strip()}))


class ProvenanceStepConfig(ProvenanceConfig):
    """What the provenance stage reads: the `provenance:` section, the package's name (naming
    duties apply to it) and the teacher and data sections (their files are described and their
    content is in the key, so a changed license file re-runs the gate)."""

    name: str
    source_teacher: TeacherConfig
    source_data: DataConfig

    def input_paths(self) -> dict[str, str]:
        paths = {f"teacher.{k}": v for k, v in self.source_teacher.input_paths().items()}
        paths |= {f"data.{k}": v for k, v in self.source_data.input_paths().items()}
        # The license table is read too: a changed entry re-runs the gate.
        return paths | {"licenses": str(LICENSE_TABLE)}


LICENSE_TABLE = Path(__file__).resolve().parent.parent / "provenance" / "licenses.yaml"

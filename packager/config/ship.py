"""What is checked, measured and shipped: `evaluate:`, `bench:` and `package:` sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from packager.config.base import Config, Dims, Task, Threads, join_relative
from packager.config.lm import GenerationDefaults
from packager.errors import old_spelling
from packager.limits import (
    MAX_BATCH,
    MAX_LENGTH,
    MAX_MEMORY_MB,
    MAX_NEW_TOKENS,
    MAX_RUNS,
    MAX_SECONDS,
    MAX_WARMUP,
)


class EvaluateConfig(Config):
    max_drop: float = Field(
        0.02,
        ge=0,
        le=1,
        description="allowed drop int8 vs fp32 of accuracy (classifiers) or of the mean cosine "
        "to the teacher (feature-extraction)",
    )
    min_accuracy: float | None = Field(None, ge=0, le=1)
    min_cosine: float | None = Field(
        None, ge=-1, le=1, description="feature-extraction: floor on the shipped model's cosine"
    )
    top_k: int = Field(10, ge=1, description="feature-extraction: neighbours compared (retrieval)")
    probe: str | None = Field(
        None,
        description="text: held-out text of another kind than the training data, measured beside "
        "the test split (builtin:fortunes | builtin:devil | builtin:jargon, or a .txt/.jsonl/... "
        "file); none: builtin:fortunes. max_drop and min_cosine apply to it too",
    )
    probe_limit: int = Field(1000, ge=20, description="text: probe texts used (a seeded sample)")

    @classmethod
    def relative_to(cls, data: dict[str, Any], base: Path) -> dict[str, Any]:
        out = super().relative_to(data, base)
        probe = out.get("probe")
        if isinstance(probe, str) and probe.strip() and not probe.startswith("builtin:"):
            out["probe"] = join_relative(probe, base)  # a probe file beside the recipe
        return out

    max_ppl_ratio: float | None = Field(
        None,
        gt=0,
        description="text-generation: fail when the shipped student's perplexity is over this "
        "multiple of the teacher's",
    )
    min_agreement: float | None = Field(
        None,
        ge=0,
        le=1,
        description="floor on the shipped student's top-1 agreement with the teacher: "
        "text-generation on held-out next tokens, unlabeled images on the test images",
    )
    lm_sequences: int = Field(
        64, ge=1, description="text-generation: held-out sequences of data.max_length tokens"
    )
    probe_gap: float = Field(
        0.03,
        ge=0,
        le=1,
        description="text: warn when the shipped student's metric on the probe is this much below "
        "its metric on the test split",
    )


class BenchConfig(Config):
    path_fields: ClassVar[tuple[str, ...]] = ("targets_dir", "feeds")

    enabled: bool = True
    targets_dir: str | None = Field(None, description="a folder of extra target profile YAMLs")
    targets: tuple[str, ...] = Field(
        ("host",),
        min_length=1,
        description="host, target profiles (edgepack targets) and ssh://user@host devices",
    )
    threads: tuple[Threads, ...] = Field(
        (1,), min_length=1, description="thread counts, each at most 4 per core of this machine"
    )
    batch: tuple[int, ...] = Field((1,), min_length=1, description="batch sizes (one or a list)")
    warmup: int = Field(20, ge=0, le=MAX_WARMUP)
    runs: int | None = Field(
        200, ge=1, le=MAX_RUNS, description="timed runs per config (null: seconds only)"
    )
    seconds: float | None = Field(
        None, gt=0, le=MAX_SECONDS, description="time budget per config (caps runs)"
    )
    dims: Dims = Field(
        default_factory=dict, description="values of named symbolic input dims, e.g. sequence"
    )
    feeds: str | None = Field(
        None,
        description="an .npz of real inputs (one array per input name) for bare models; "
        "packages are benchmarked on their own samples",
    )
    memory_cap_mb: float | None = Field(
        None,
        gt=0,
        le=MAX_MEMORY_MB,
        description="host-emulated memory cap; default: each target's own memory",
    )
    prefill: tuple[int, ...] = Field(
        (128, 512), min_length=1, description="language models: prompt lengths timed (pp)"
    )
    decode: int = Field(
        128, ge=1, le=MAX_NEW_TOKENS, description="language models: tokens generated and timed (tg)"
    )
    lm_runs: int = Field(
        3, ge=1, le=MAX_RUNS, description="language models: repetitions of each measurement"
    )

    @field_validator("batch", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, int) else v

    @field_validator("batch", "prefill")
    @classmethod
    def _sizes(cls, v: tuple[int, ...], info) -> tuple[int, ...]:
        top = MAX_BATCH if info.field_name == "batch" else MAX_LENGTH
        if any(not 1 <= t <= top for t in v):
            raise ValueError(f"{info.field_name} values must be 1 to {top}")
        return v

    @model_validator(mode="after")
    def _runs_or_seconds(self) -> BenchConfig:
        if self.runs is None and self.seconds is None:
            raise ValueError("set runs or seconds (or both) so each config knows when to stop")
        return self

    def input_paths(self) -> dict[str, str]:
        paths = {"targets_dir": self.targets_dir, "feeds": self.feeds}
        return {k: v for k, v in paths.items() if v}


class PackageConfig(Config):
    unkeyed: ClassVar[frozenset[str]] = frozenset({"out_dir"})

    out_dir: str = "dist"
    version: str = "0.1.0"
    model: Literal["quantized", "fp32"] = Field(
        "quantized",
        description="which student variant ships: the quantized one (whatever its precision: "
        "int8, fp16, int4) or the fp32 one; the old spelling int8 reads as quantized",
    )
    samples: int = Field(16, ge=1, le=1000)
    sample_atol: float = Field(1e-4, gt=0)
    sample_rtol: float = Field(1e-3, ge=0)
    mobile: bool = Field(
        False,
        description="also write model.ort (ORT format), required_operators.config for a "
        "reduced-operator onnxruntime build, and the NNAPI/CoreML usability check",
    )
    fix_shapes: dict[str, tuple[int, ...]] | None = Field(
        None,
        description="mobile: input name -> fixed shape for the .ort, e.g. {input: [1, 1, 8, 8]}; "
        "NNAPI and CoreML need fixed shapes (model.onnx keeps its dynamic ones)",
    )
    generation: GenerationDefaults = Field(
        GenerationDefaults(),
        description="text-generation: the generation defaults and the recorded sample generation",
    )

    @field_validator("fix_shapes")
    @classmethod
    def _positive_dims(
        cls, v: dict[str, tuple[int, ...]] | None
    ) -> dict[str, tuple[int, ...]] | None:
        if v is not None and any(d < 1 for dims in v.values() for d in dims):
            raise ValueError("every fixed dimension must be >= 1")
        return v

    @field_validator("model", mode="before")
    @classmethod
    def _old_spelling(cls, v: Any) -> Any:
        if v == "int8":
            old_spelling(
                "package.model: int8 is now spelled quantized (it ships the quantized model at any precision)"
            )
            return "quantized"
        return v

    @field_validator("out_dir")
    @classmethod
    def _fits_the_file_system(cls, v: str) -> str:
        # A folder name the disk refuses would fail the build's last step (NAME_MAX 255 bytes a
        # component, PATH_MAX 4096 in all): refused when the recipe loads.
        long = next((p for p in Path(v).parts if len(p.encode()) > 255), None)
        if long is not None:
            raise ValueError(
                f"a folder name of {len(long.encode())} bytes, over the 255 a name holds"
            )
        if len(v.encode()) > 3800:  # leaves room for NAME.edgepack and its temporary name
            raise ValueError(f"a path of {len(v.encode())} bytes, over the 3800 this allows")
        return v

    @model_validator(mode="after")
    def _fix_shapes_needs_mobile(self) -> PackageConfig:
        if self.fix_shapes and not self.mobile:
            raise ValueError("fix_shapes applies to the mobile model: set package.mobile = true")
        return self


class EvaluateStepConfig(EvaluateConfig):
    """What the evaluate stage reads: the `evaluate:` section plus the recipe's task (accuracy
    for classifiers, cosine to the teacher for embeddings)."""

    task: Task


class PackageStepConfig(PackageConfig):
    """What the package stage reads: the `package:` section plus the recipe's identity (name,
    task, description), the resolved recipe the manifest records as lineage and the
    distillation method its provenance block records."""

    name: str
    task: Task
    description: str = ""
    recipe: dict[str, Any] = Field(default_factory=dict, description="the resolved recipe")
    recipe_dir: str | None = Field(
        None,
        description="the recipe file's folder: the package publishes paths relative to it (and "
        "any other absolute path as its file name); none for a recipe made in code",
    )
    method: dict[str, Any] = Field(
        default_factory=dict,
        description="the distillation method as configured (losses and weights, temperature, "
        "epochs, ...): the manifest's provenance.method",
    )
    search: dict[str, Any] | None = Field(
        None,
        description="edgepack auto: the search that chose this recipe (space, trials, "
        "constraints, the Pareto front, the pick and why): the manifest's `search`",
    )

    def _unkeyed_paths(self) -> dict[str, Any]:
        # The recorded recipe keeps package.out_dir (the lineage says where it was published);
        # the key leaves it out, like the section's own out_dir.
        paths = super()._unkeyed_paths()
        paths["recipe"] = {"package": dict.fromkeys(PackageConfig.unkeyed, True)}
        return paths

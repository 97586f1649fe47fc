"""`edgepack auto`: the recipe's `auto:` section (the search space and how the search spends CPU),
and the configs of the two steps only the search plans: `calibrate` (the host's per-op-class
costs for the latency model) and `sketch` (a candidate student's graph, untrained)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from packager.config.base import Config, Task
from packager.config.distill import Student, StudentConfig


class AutoConfig(Config):
    """What `edgepack auto` may change in the recipe and how it searches. Every trial is the
    recipe with `--set`-style overrides, so each is cached like any build."""

    student: dict[str, tuple[Any, ...]] | None = Field(
        None,
        description="distill.student field -> choices, searched as a grid (e.g. {channels: "
        "[[8], [8, 16]], hidden: [16, 32]}; transformers: {num_layers: [2, 3], "
        "intermediate_size: [null, 512]}); none: the task's defaults",
    )
    quantize: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description="quantize.mode choices (registered schemes: the recipe checks them); none: "
        "the schemes each declares searched for the recipe's modality, in their ranks",
    )
    threads: tuple[int, ...] | None = Field(
        None, min_length=1, description="thread counts; none: 1, 2, 4, ... up to the target's cores"
    )
    dims: dict[str, tuple[int, ...]] = Field(
        default_factory=dict,
        description="input dims the search may choose, e.g. {sequence: [64, 128]} (also sets "
        "data.max_length); empty: the recipe's own",
    )
    fidelity: tuple[float, ...] = Field(
        (0.25, 0.5, 1.0),
        min_length=1,
        description="successive halving rungs: fractions of the training (the last is 1.0)",
    )
    fidelity_field: str | None = Field(
        None,
        description="the recipe field a rung scales (distill.epochs, data.limit, "
        "distill.max_steps); none: distill.epochs, or data.limit for a one-epoch text recipe",
    )
    eta: int = Field(2, ge=2, description="successive halving: 1/eta of the students go on")
    top_k: int = Field(8, ge=1, description="students trained at the first rung")
    max_candidates: int = Field(
        96, ge=1, description="a larger space is sampled down to this many (seeded)"
    )
    tie: float = Field(
        0.002, ge=0, description="metric differences up to this are ties: faster, then smaller wins"
    )
    seed: int = Field(0, description="seeds the sampling of a large space and every tie-break")

    @field_validator("fidelity")
    @classmethod
    def _rungs(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < f <= 1 for f in v) or list(v) != sorted(v) or v[-1] != 1.0:
            raise ValueError("fidelity: increasing fractions in (0, 1], the last one 1.0")
        return v

    @field_validator("threads")
    @classmethod
    def _positive(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and any(t < 1 for t in v):
            raise ValueError("thread counts must be >= 1")
        return v

    @field_validator("student")
    @classmethod
    def _choices(cls, v: dict[str, tuple[Any, ...]] | None) -> dict[str, tuple[Any, ...]] | None:
        if v is not None and any(len(choices) == 0 for choices in v.values()):
            raise ValueError("every student field needs at least one choice")
        return v


class CalibrateConfig(Config):
    """The calibrate step: this host's per-op-class microbenchmarks (packager.bench.microbench).
    The host's identity is in the key, so another CPU or onnxruntime measures anew."""

    cpu: str
    arch: str
    onnxruntime: str
    flags: tuple[str, ...] = ()
    cores: int = Field(1, ge=1)
    quick: bool = Field(False, description="fewer, shorter timings (tests)")


class SketchConfig(Config):
    """The sketch step: a candidate student built as distill would build it, but untrained, so
    its graph (and so its latency and size) is known before any training."""

    student: Student = StudentConfig()
    task: Task = "image-classification"

    @model_validator(mode="after")
    def _not_lm(self) -> SketchConfig:
        if self.student.arch == "causal-lm":
            raise ValueError("edgepack auto does not search causal language models yet")
        return self

"""The stage contract: a frozen config class plus one function registered against its type.

    @register_stage(QuantizeConfig)
    def quantize(model: Artifact, cfg: QuantizeConfig, ctx: StageContext) -> Output: ...

A stage reads its config and its inputs, nothing else: everything it reads is in its cache key.
It writes its files into `ctx.workdir` (a temporary folder the runner renames into the cache
when the stage returns) and returns an `Output` with its kind and metadata. Inputs are reached by
role through `ctx.inputs` (the plan maps roles onto steps; a stage never knows step names).

This module imports no stage: `packager.pipeline` imports `packager.stages`, which registers
them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packager.artifact import Artifact, Output

if TYPE_CHECKING:
    from pathlib import Path

    from packager.config import Config
    from packager.progress import Reporter


@dataclass(frozen=True)
class Step:
    """One node of a plan: a step name, the config its stage runs with, and its inputs as
    role -> step name (a tuple of step names means each role is named like its step)."""

    name: str
    config: Config
    inputs: Mapping[str, str] | tuple[str, ...] = ()
    extra: str = ""  # folded into the key: e.g. a nonce that makes a benchmark measure again

    def __post_init__(self) -> None:
        roles = self.inputs if isinstance(self.inputs, Mapping) else {n: n for n in self.inputs}
        object.__setattr__(self, "inputs", dict(roles))

    @property
    def roles(self) -> dict[str, str]:
        return dict(self.inputs)  # type: ignore[arg-type]


@dataclass
class StageContext:
    step: str
    workdir: Path
    inputs: dict[str, Artifact]  # role -> finished input artifact
    reporter: Reporter
    records: list[dict[str, Any]] = field(default_factory=list)  # lineage of the steps so far
    # A folder kept across interrupted runs of this step (same key), removed once it commits:
    # where a training step keeps its checkpoints, so a killed run resumes.
    scratch: Path | None = None

    def log(self, message: str) -> None:
        self.reporter.note(f"{self.step}: {message}")

    def warn(self, message: str) -> None:
        self.reporter.warn(f"{self.step}: {message}")


StageFn = Callable[[Any, Any, StageContext], Output]


@dataclass(frozen=True)
class StageSpec:
    name: str
    config_type: type
    fn: StageFn
    version: int


_REGISTRY: dict[type, StageSpec] = {}


def register_stage(config_type: type[Config], *, name: str | None = None, version: int = 1):
    """Register `fn` as the stage for configs of `config_type`.

    Bump `version` when a stage's output changes for the same config: it is part of the cache key.
    """

    def deco(fn: StageFn) -> StageFn:
        _REGISTRY[config_type] = StageSpec(name or fn.__name__, config_type, fn, version)
        return fn

    return deco


def stage_for(config: Config) -> StageSpec:
    try:
        return _REGISTRY[type(config)]
    except KeyError:
        raise LookupError(
            f"no stage registered for {type(config).__name__} (is its module in packager.stages?)"
        ) from None


def registered() -> dict[type, StageSpec]:
    return dict(_REGISTRY)

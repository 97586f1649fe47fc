"""The stage contract: a frozen config class plus one function registered against its type.

    @register_stage(QuantizeConfig)
    def quantize(inp: Artifact, cfg: QuantizeConfig, ctx: StageContext) -> Output: ...

A stage writes its files into `ctx.workdir` (a temporary folder the runner renames into the
cache when the stage returns) and returns an `Output` with its kind and metadata. Inputs other
than the primary one are reached by step name through `ctx.inputs`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from packager.progress import Reporter
    from packager.recipe import Config, Recipe

ARTIFACT_FILE = "artifact.json"


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

    @classmethod
    def read(cls, folder: Path) -> Artifact:
        rec = json.loads((folder / ARTIFACT_FILE).read_text())
        return cls(path=folder, kind=rec["kind"], id=rec["id"], meta=rec.get("meta", {}))


@dataclass
class Output:
    """What a stage function returns; the runner turns it into an Artifact."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    step: str
    workdir: Path
    inputs: dict[str, Artifact]
    recipe: Recipe
    reporter: Reporter
    records: list[dict[str, Any]] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.reporter.note(f"{self.step}: {message}")


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
    _load_builtin_stages()
    try:
        return _REGISTRY[type(config)]
    except KeyError:
        raise LookupError(f"no stage registered for {type(config).__name__}") from None


def registered() -> dict[type, StageSpec]:
    _load_builtin_stages()
    return dict(_REGISTRY)


def _load_builtin_stages() -> None:
    import packager.stages  # noqa: F401  (registers every stage on import)

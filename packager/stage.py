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
    # The cache's root: where what outlives one step's folder is kept (an API teacher's answers,
    # call by call, so that an interrupted step resumes without paying twice).
    cache_root: Path | None = None

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
    """The stage registered for the config's class or, for a variant's class (a quantization
    scheme's config), for the base it extends."""
    for cls in type(config).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    raise LookupError(
        f"no stage registered for {type(config).__name__} (is its module in packager.stages?)"
    )


def registered() -> dict[type, StageSpec]:
    return dict(_REGISTRY)


# stage -> modality -> its handler, or the sentence that says why the stage does not take it.
HANDLED: dict[str, dict[str, Callable[..., Any] | str]] = {}


def handled_by(modality: str) -> dict[str, bool]:
    """Which stages handle `modality` (True) or refuse it in words (False): the part of a
    modality's declaration the stages own."""
    return {s: callable(t[modality]) for s, t in HANDLED.items() if modality in t}


class Handlers:
    """A stage's halves by modality (packager.config.modalities), chosen in one place.

        _HANDLERS = Handlers("teacher", array=_array, text=_text, image=_image, lm=_lm)
        return _HANDLERS(data.modality)(data, cfg, ctx)

    Every table is recorded in HANDLED, so a test checks that each registered modality is
    handled or refused in words by every stage; a modality a stage lacks is one RecipeError."""

    def __init__(self, stage: str, refused: dict[str, str] | None = None, **handlers: Any):
        self.stage, self.table = stage, dict(handlers)
        self.refused = dict(refused or {})
        HANDLED[stage] = {**self.refused, **self.table}

    def __call__(self, modality: str) -> Callable[..., Any]:
        from packager.errors import RecipeError

        if modality in self.table:
            return self.table[modality]
        why = self.refused.get(modality) or f"it has no handler for {modality} data"
        raise RecipeError(f"{self.stage}: {why}")

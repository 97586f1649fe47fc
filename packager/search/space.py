"""The search space of `edgepack auto`: students (a grid over distill.student fields), input dims,
quantization modes and thread counts, each candidate a set of `--set`-style overrides of the
recipe. The recipe's `auto:` section names the choices; what it leaves out, the task decides."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from packager.config import AutoConfig
from packager.errors import RecipeError
from packager.hashing import json_sha256
from packager.quantize.schemes import fields_for, searched_modes

# Per-task defaults: what a user who names no space gets.
ARRAY_STUDENTS: dict[str, tuple[Any, ...]] = {
    "arch": ("cnn", "mlp"),
    "channels": ((4,), (8,), (8, 16), (16, 32)),
    "hidden": (16, 32, 64),
}
TEXT_STUDENTS: dict[str, tuple[Any, ...]] = {
    "layers": ("every-other",),
    "num_layers": (2, 3, 4),
    "intermediate_size": (None, 1024, 512, 384),
}


def _value(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


def digest(*parts: Any) -> str:
    """A search id: 16 hex digits of the parts' canonical JSON (packager.hashing)."""
    return json_sha256(parts, default=str)[:16]


@dataclass(frozen=True)
class Group:
    """What training depends on: a student and the input dims. Its quantization modes are
    cheap variants of one trained student (the distill step is shared)."""

    student: tuple[tuple[str, Any], ...]
    dims: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> str:
        return digest("group", self.student, self.dims)

    def overrides(self) -> list[str]:
        out = [f"distill.student.{k}={_value(v)}" for k, v in self.student]
        for name, v in self.dims:
            out.append(f"bench.dims.{name}={v}")
            if name == "sequence":
                out.append(f"data.max_length={v}")
        return out

    def describe(self) -> str:
        s = dict(self.student)
        hide = {"channels"} if s.get("arch") == "mlp" else set()
        hide |= {"width"} if s.get("arch") != "pruned" else set()
        parts = [f"{k}={_value(v)}" for k, v in self.student if v is not None and k not in hide]
        return " ".join(parts + [f"{n}={v}" for n, v in self.dims]).replace('"', "")


@dataclass(frozen=True)
class Candidate:
    group: Group
    mode: str
    # The recipe's quantize: section (JSON, the fields it sets) this candidate switches to
    # `mode`: a field that scheme does not take is left out (packager.quantize.registry).
    section: str = field(default="{}", compare=False)

    @property
    def key(self) -> str:
        return digest("candidate", self.group.key, self.mode)

    def overrides(self) -> list[str]:
        quantize = fields_for(self.mode, json.loads(self.section))
        out = [*self.group.overrides(), f"quantize={json.dumps(quantize, sort_keys=True)}"]
        # An fp32 candidate ships the fp32 student (build_plan refuses int8 without a mode).
        out.append(f"package.model={'fp32' if self.mode == 'none' else 'quantized'}")
        return out

    def describe(self) -> str:
        return f"{self.group.describe()} {self.mode}"


@dataclass
class Space:
    groups: list[Group]
    modes: tuple[str, ...]
    threads: tuple[int, ...]
    fidelity: tuple[float, ...]
    fidelity_field: str | None
    fidelity_base: int | None
    settings: dict[str, Any] = field(default_factory=dict)
    quantize: str = "{}"  # the recipe's quantize: section as given (JSON)

    def candidate(self, group: Group, mode: str) -> Candidate:
        return Candidate(group, mode, self.quantize)

    @property
    def candidates(self) -> list[Candidate]:
        return [self.candidate(g, m) for g in self.groups for m in self.modes]

    def fidelity_overrides(self, fraction: float) -> list[str]:
        """The override that trains a `fraction` of the recipe's steps (none at 1.0)."""
        if fraction >= 1.0 or self.fidelity_field is None or not self.fidelity_base:
            return []
        return [f"{self.fidelity_field}={max(1, round(self.fidelity_base * fraction))}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "students": [dict(g.student) for g in self.groups],
            "dims": sorted({n for g in self.groups for n, _ in g.dims}),
            "modes": list(self.modes),
            "threads": list(self.threads),
            "fidelity": list(self.fidelity),
            "fidelity_field": self.fidelity_field,
            "fidelity_base": self.fidelity_base,
            **self.settings,
        }


def _student_grid(recipe, auto: AutoConfig) -> list[tuple[tuple[str, Any], ...]]:
    arch = recipe.distill.student.arch
    if arch == "causal-lm":
        raise RecipeError("edgepack auto: causal language models are not searched yet")
    grid = auto.student or (TEXT_STUDENTS if arch == "transformer" else ARRAY_STUDENTS)
    base = {k: _plain(v) for k, v in recipe.distill.student.to_json().items()}
    unknown = sorted(set(grid) - set(base) - {"arch"})
    if unknown:
        raise RecipeError(
            f"auto.student: {', '.join(unknown)} is not a field of distill.student "
            f"(fields: {', '.join(sorted(base))})"
        )
    names = sorted(grid)
    seen, out = set(), []
    for combo in itertools.product(*(grid[n] for n in names)):
        student = {**base, **{n: _plain(v) for n, v in zip(names, combo, strict=True)}}
        if student.get("arch") == "mlp":  # an mlp has no convolutions: one per hidden width
            student["channels"] = base.get("channels")
        if student.get("layers") not in ("every-other", "first-k", None) and "num_layers" in grid:
            student["num_layers"] = None  # an explicit layer list fixes the depth itself
        items = tuple(sorted(student.items()))
        if _value(items) not in seen:
            seen.add(_value(items))
            out.append(items)
    return out


def _plain(v: Any) -> Any:
    """A choice as a hashable value (lists become tuples; JSON writes both as lists)."""
    return tuple(_plain(x) for x in v) if isinstance(v, list | tuple) else v


def _default_threads(cores: int) -> tuple[int, ...]:
    out, t = [], 1
    while t < cores:
        out.append(t)
        t *= 2
    return (*out, cores)


def _fidelity_field(recipe, auto: AutoConfig) -> tuple[str | None, int | None]:
    name = auto.fidelity_field
    if name is None:
        # Epochs first: a shorter rung then shares the data and the cached teacher outputs;
        # a one-epoch text recipe reads fewer training texts instead.
        if recipe.modality != "text" or recipe.distill.epochs > 1:
            name = "distill.epochs"
        elif recipe.data.limit:
            name = "data.limit"
        else:
            return None, None  # one epoch over unbounded data: every rung trains fully
    section, _, leaf = name.partition(".")
    value = getattr(getattr(recipe, section, None), leaf, None)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RecipeError(
            f"auto.fidelity_field = {name}: needs an integer field the recipe sets (got {value!r})"
        )
    return name, value


def build_space(recipe, cores: int) -> Space:
    """Every candidate of `recipe`'s search, sampled down to auto.max_candidates (seeded)."""
    auto: AutoConfig = recipe.auto
    students = _student_grid(recipe, auto)
    dims = [
        tuple(zip(sorted(auto.dims), c, strict=True))
        for c in itertools.product(*(auto.dims[n] for n in sorted(auto.dims)))
    ] or [()]
    groups = [Group(s, d) for s in students for d in dims]
    modes = tuple(auto.quantize or searched_modes(recipe.modality))
    if not modes:
        raise RecipeError(
            f"edgepack auto: no quantization scheme is searched for {recipe.modality} data by "
            "default: name the modes in auto.quantize"
        )
    cap = max(1, auto.max_candidates // len(modes))
    if len(groups) > cap:  # seeded sample of the students, kept in the grid's order
        rng = np.random.default_rng(auto.seed)
        keep = sorted(rng.choice(len(groups), size=cap, replace=False).tolist())
        groups = [groups[i] for i in keep]
    name, base = _fidelity_field(recipe, auto)
    threads = tuple(sorted(set(auto.threads or _default_threads(cores))))
    settings = {"eta": auto.eta, "top_k": auto.top_k, "tie": auto.tie, "seed": auto.seed}
    settings["max_candidates"] = auto.max_candidates
    rungs = auto.fidelity if name is not None else (1.0,)  # nothing to shorten: train fully
    section = json.dumps(recipe.quantize.model_dump(mode="json", exclude_unset=True))
    return Space(groups, modes, threads, rungs, name, base, settings, section)

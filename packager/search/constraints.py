"""What a user asks of `edgepack auto` (latency on the target, size, memory, the metric) and how a
trial is judged against it: which constraints it meets, which it misses and by how much, the
Pareto front of metric vs latency vs size, and the pick."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Constraints:
    latency_ms: float
    size_mb: float | None = None
    memory_mb: float | None = None
    max_drop: float | None = None
    min_metric: float | None = None
    budget_minutes: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def misses(trial: dict[str, Any], c: Constraints, *, metric: bool = True) -> list[dict[str, Any]]:
    """Each constraint `trial` misses: the limit, its value and by how much (value - limit for
    upper bounds, limit - value for the metric floor). `metric=False` judges cost alone."""
    out = []

    def over(name: str, value: float | None, limit: float | None, unit: str) -> None:
        if limit is not None and value is not None and value > limit:
            out.append({"constraint": name, "limit": limit, "value": value, "by": value - limit,
                        "relative": (value - limit) / (limit or 0.01), "unit": unit})  # fmt: skip

    over("latency_ms", trial.get("latency_ms"), c.latency_ms, "ms")
    over("size_mb", trial.get("size_mb"), c.size_mb, "MB")
    over("memory_mb", trial.get("memory_mb"), c.memory_mb, "MB")
    if metric and trial.get("metric") is not None:
        over("max_drop", trial.get("drop"), c.max_drop, "")
        floor = c.min_metric
        if floor is not None and trial["metric"] < floor:
            out.append({"constraint": "min_metric", "limit": floor, "value": trial["metric"],
                        "by": floor - trial["metric"], "relative": (floor - trial["metric"]) /
                        max(abs(floor), 1e-9), "unit": ""})  # fmt: skip
    return out


def shortfall(trial: dict[str, Any], c: Constraints) -> float:
    """One number for how far a trial is from meeting everything (0: it meets all): the sum of
    its relative misses; a drop is relative to max(max_drop, 0.01)."""
    total = 0.0
    for m in misses(trial, c):
        if m["constraint"] == "max_drop":
            total += m["by"] / max(m["limit"], 0.01)
        else:
            total += m["relative"]
    return total


def pareto_front(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trials no other trial beats on metric (higher), latency and size (lower) at once,
    fastest first."""
    scored = [t for t in trials if t.get("metric") is not None and t.get("latency_ms") is not None]

    def dominates(a, b) -> bool:
        ge = (
            a["metric"] >= b["metric"]
            and a["latency_ms"] <= b["latency_ms"]
            and a["size_mb"] <= b["size_mb"]
        )
        gt = (
            a["metric"] > b["metric"]
            or a["latency_ms"] < b["latency_ms"]
            or a["size_mb"] < b["size_mb"]
        )
        return ge and gt

    front = [t for t in scored if not any(dominates(o, t) for o in scored if o is not t)]
    return sorted(front, key=lambda t: (t["latency_ms"], t["size_mb"], -t["metric"], t["id"]))


def choose(trials: list[dict[str, Any]], c: Constraints, tie: float) -> tuple[dict | None, str]:
    """(the pick, why). Among the trials that meet every constraint: the best metric, metrics
    within `tie` counted equal (then the faster, then the smaller); fully trained trials
    before shorter ones. When none meets them all: the one with the smallest shortfall."""
    scored = [t for t in trials if t.get("metric") is not None]
    if not scored:
        return None, "no trial was trained (the budget ran out first)"
    ok = [t for t in scored if not misses(t, c)]
    if ok:
        # The best among the most-trained passing trials: a short rung's score is not what
        # its student reaches trained fully, so it does not rank the fully trained ones.
        top = max(t["fidelity"] for t in ok)
        best = max(t["metric"] for t in ok if t["fidelity"] == top)

        def rank(t):
            return (t["fidelity"] < 1.0, t["metric"] < best - tie, t["latency_ms"], t["size_mb"],
                    -t["metric"], t["id"])  # fmt: skip

        pick = min(ok, key=rank)
        why = (
            f"meets every constraint; of the {len(ok)} trial(s) that do, the best {pick['metric_name']} "
            f"(ties within {tie:g} go to the faster, then the smaller"
            + (", fully trained first" if any(t["fidelity"] < 1.0 for t in ok) else "")
            + ")"
        )
        return pick, why
    pick = min(scored, key=lambda t: (shortfall(t, c), t["fidelity"] < 1.0, t["id"]))
    missed = ", ".join(describe_miss(m) for m in misses(pick, c))
    return (
        pick,
        f"no trial meets every constraint; the closest (smallest shortfall) misses {missed}",
    )


def describe_miss(m: dict[str, Any]) -> str:
    if m["constraint"] == "max_drop":
        return f"max_drop {m['limit']:g} (drop {m['value']:.4f}, {m['by']:.4f} over)"
    if m["constraint"] == "min_metric":
        return f"min_metric {m['limit']:g} ({m['value']:.4f}, {m['by']:.4f} short)"
    return (
        f"{m['constraint']} {m['limit']:g} ({m['value']:.4g} {m['unit']}, "
        f"{m['by']:.4g} {m['unit']} or {m['relative']:.0%} over)"
    )

"""The search itself: cost every candidate from its graph (no training), train the students whose
candidates fit at a fraction of the steps, keep the best 1/eta at each rung of successive halving
up to full training, then pick. Every trial's record is written (atomically) to the trial log
before the next trial starts, so an interrupted search resumes where it stopped and a rerun or a
wider search reuses what was done; nothing here is random but the seeded tie-breaks.

`Evaluator` is what runs trials (packager.search.trials: the recipe's cached steps through the
runner); tests give a fake with known costs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from packager.search.constraints import Constraints, choose, misses, pareto_front, shortfall
from packager.search.space import Candidate, Group, Space, digest


class Evaluator(Protocol):
    def cost(self, candidate: Candidate) -> dict[str, Any]:
        """{"latency": {threads: {"ms", "low_ms", "high_ms"}}, "label", "size_mb",
        "memory_mb", "params"} of the candidate's untrained graph."""

    def train(self, group: Group, fidelity: float, modes: list[str]) -> dict[str, dict[str, Any]]:
        """mode -> the cost fields plus "metric", "metric_name", "teacher_metric" of the group's
        student trained at `fidelity` and quantized in that mode."""


class TrialLog:
    """One JSON file per trial under `folder`, written through a temporary name."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def get(self, trial_id: str) -> dict[str, Any] | None:
        path = self.folder / f"{trial_id}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # absent, or unreadable: the trial runs again

    def put(self, record: dict[str, Any]) -> None:
        from packager.files import write_text

        write_text(
            self.folder / f"{record['id']}.json", json.dumps(record, indent=1, sort_keys=True)
        )


class Budget:
    def __init__(self, minutes: float | None, clock: Callable[[], float]):
        self.seconds = None if minutes is None else minutes * 60
        self.clock = clock
        self.start = clock()
        self.spent: dict[str, list[float]] = {}

    def allows(self, phase: str) -> bool:
        if self.seconds is None:
            return True
        past = self.spent.get(phase) or [0.0]
        return self.clock() - self.start + sum(past) / len(past) <= self.seconds

    def record(self, phase: str, seconds: float) -> None:
        self.spent.setdefault(phase, []).append(seconds)


def _with_best_threads(rec: dict[str, Any]) -> dict[str, Any]:
    """The thread count with the lowest latency (fewer threads on a tie) becomes the trial's."""
    best = min(rec["latency"].items(), key=lambda kv: (kv[1]["ms"], int(kv[0])))
    rec |= {"threads": int(best[0]), "latency_ms": best[1]["ms"]}
    rec |= {"low_ms": best[1].get("low_ms"), "high_ms": best[1].get("high_ms")}
    return rec


class Search:
    def __init__(self, space: Space, evaluator: Evaluator, constraints: Constraints,
                 log: TrialLog, *, clock: Callable[[], float] = time.monotonic,
                 progress: Callable[[str], None] | None = None):  # fmt: skip
        self.space, self.evaluator, self.c, self.log = space, evaluator, constraints, log
        self.clock, self.progress = clock, progress or (lambda _msg: None)
        self.budget = Budget(constraints.budget_minutes, clock)
        self.trials: dict[str, dict[str, Any]] = {}
        self.stopped = "complete"

    def _run(self, trial_id: str, phase: str, fn: Callable[[], dict[str, Any]], force=False):
        rec = self.log.get(trial_id)
        if rec is not None:
            self.trials[trial_id] = rec
            return rec
        if not force and not self.budget.allows(phase):
            self.stopped = "budget"
            return None
        t0 = self.clock()
        rec = fn()
        rec["seconds"] = round(self.clock() - t0, 3)
        self.budget.record(phase, rec["seconds"])
        self.log.put(rec)
        self.trials[trial_id] = rec
        return rec

    def _cost(self, cand: Candidate) -> dict[str, Any] | None:
        def run():
            out = self.evaluator.cost(cand)
            self.progress(f"cost {cand.describe()}")
            return _with_best_threads(self._base("cost", cand, 0.0) | out)

        return self._run(self._id("cost", cand, 0.0), "cost", run)

    def _id(self, phase: str, cand: Candidate, fidelity: float) -> str:
        """A trial's id: what it ran, and the parts of the space that shape its record (the
        thread counts its latency is the best of, what a fidelity below 1 trains less of), so
        a search over more threads or another fidelity field runs its trials again."""
        sp = self.space
        return digest(phase, cand.key, fidelity, sp.threads, sp.fidelity_field, sp.fidelity_base)

    def _base(self, phase: str, cand: Candidate, fidelity: float) -> dict[str, Any]:
        return {
            "id": self._id(phase, cand, fidelity),
            "phase": phase,
            "candidate": cand.key,
            "group": cand.group.key,
            "student": dict(cand.group.student),
            "dims": dict(cand.group.dims),
            "mode": cand.mode,
            "describe": cand.describe(),
            "fidelity": fidelity,
            "overrides": cand.overrides() + self.space.fidelity_overrides(fidelity),
        }

    def _train(self, group: Group, fidelity: float, modes: list[str], force=False) -> list[dict]:
        cands = [self.space.candidate(group, m) for m in modes]
        ids = {c.mode: self._id("train", c, fidelity) for c in cands}
        have = {m: self.log.get(i) for m, i in ids.items()}
        todo = [m for m, r in have.items() if r is None]
        if todo and (force or self.budget.allows("train")):
            # One mode per call, each recorded as it finishes: an interrupt loses at most the
            # mode in flight (the student's distill step is in the stage cache after the first).
            for m in todo:
                t0 = self.clock()
                out = self.evaluator.train(group, fidelity, [m])
                seconds = round(self.clock() - t0, 3)
                self.budget.record("train", seconds)
                rec = _with_best_threads(
                    self._base("train", self.space.candidate(group, m), fidelity) | out[m]
                )
                rec["drop"] = rec["teacher_metric"] - rec["metric"]
                rec["seconds"] = seconds
                self.log.put(rec)
                have[m] = rec
            self.progress(f"trained {group.describe()} at {fidelity:g}: {len(todo)} mode(s)")
        elif todo:
            self.stopped = "budget"
        done = [r for r in have.values() if r is not None]
        for r in done:
            self.trials[r["id"]] = r
        return done

    def _tiebreak(self, key: str) -> str:
        return digest("tie", self.space.settings.get("seed", 0), key)

    def run(self) -> dict[str, Any]:
        costs: dict[str, dict[str, Any]] = {}
        for cand in self.space.candidates:
            rec = self._cost(cand)
            if rec is not None:
                costs[cand.key] = rec
        survivors = self._first_rung(costs)
        for i, fidelity in enumerate(self.space.fidelity):
            last = i == len(self.space.fidelity) - 1
            scores = {}
            for g in survivors:
                recs = self._train(g, fidelity, self._modes(g, costs, last))
                if recs:
                    fits = [r for r in recs if not misses(r, self.c, metric=False)] or recs
                    scores[g] = max(r["metric"] for r in fits)
            if last or self.stopped == "budget":
                break
            keep = max(1, math.ceil(len(scores) / self.space.settings.get("eta", 2)))
            ranked = sorted(scores, key=lambda g: (-scores[g], self._tiebreak(g.key)))
            survivors = ranked[:keep]
        return self._finish(costs)

    def _first_rung(self, costs: dict[str, dict[str, Any]]) -> list[Group]:
        """Students with a candidate that fits by cost, largest first (more parameters: the
        better bet on the metric); when none fits, the ones closest to fitting."""
        by_group: dict[Group, list[dict[str, Any]]] = {}
        for cand in self.space.candidates:
            if cand.key in costs:
                by_group.setdefault(cand.group, []).append(costs[cand.key])
        fit = [
            g for g, rs in by_group.items() if any(not misses(r, self.c, metric=False) for r in rs)
        ]
        top = self.space.settings.get("top_k", 8)
        if fit:
            params = {g: max(r.get("params") or 0 for r in by_group[g]) for g in fit}
            return sorted(fit, key=lambda g: (-params[g], self._tiebreak(g.key)))[:top]
        gap = {g: min(shortfall(r, self.c) for r in rs) for g, rs in by_group.items()}
        return sorted(gap, key=lambda g: (gap[g], self._tiebreak(g.key)))[:top]

    def _modes(self, g: Group, costs: dict[str, dict[str, Any]], last: bool) -> list[str]:
        """Every mode at the last rung (the front shows them all); before it, the modes whose
        cost fits, else the one closest to fitting."""
        recs = {m: costs.get(self.space.candidate(g, m).key) for m in self.space.modes}
        recs = {m: r for m, r in recs.items() if r is not None}
        if last:
            return list(recs)
        fits = [m for m, r in recs.items() if not misses(r, self.c, metric=False)]
        return fits or [min(recs, key=lambda m: (shortfall(recs[m], self.c), m))]

    def _finish(self, costs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        trained = [t for t in self.trials.values() if t["phase"] == "train"]
        if not trained and costs:  # never empty-handed: the cheapest fit, trained at rung 0
            best = min(costs.values(), key=lambda r: (shortfall(r, self.c), r["id"]))
            cand = next(c for c in self.space.candidates if c.key == best["candidate"])
            trained = self._train(cand.group, self.space.fidelity[0], [cand.mode], force=True)
        # Each candidate as far as it was trained: a shorter rung of it is not another option.
        latest: dict[str, dict[str, Any]] = {}
        for t in sorted(trained, key=lambda t: t["fidelity"]):
            latest[t["candidate"]] = t
        pick, why = choose(list(latest.values()), self.c, self.space.settings.get("tie", 0.0))
        front = pareto_front(list(latest.values()))
        return {
            "trials": sorted(self.trials.values(), key=lambda t: (t["phase"], t["id"])),
            "front": [t["id"] for t in front],
            "pick": pick,
            "why": why,
            "misses": misses(pick, self.c) if pick else [],
            "stopped": self.stopped,
        }

"""The search on a tiny space with known costs (a fake evaluator): every constraint honoured,
never empty-handed, deterministic for a seed, resumable after an interrupt, within its budget."""

from __future__ import annotations

import pytest

from packager.search.constraints import Constraints, misses
from packager.search.halving import Search, TrialLog
from packager.search.space import Group, Space

# student hidden width -> (params, latency ms at 1 thread, size MB, memory MB, metric when trained)
STUDENTS = {8: (100, 0.02, 0.01, 0.02, 0.90), 16: (200, 0.03, 0.02, 0.03, 0.95),
            32: (400, 0.05, 0.04, 0.05, 0.97), 64: (800, 0.09, 0.08, 0.09, 0.98)}  # fmt: skip
MODES = {"static": (1.2, 0.3, -0.01), "none": (1.0, 1.0, 0.0)}  # latency x, size x, metric +
TEACHER = 0.985


class FakeEvaluator:
    """Known costs: latency halves from 1 to 2 threads; a shorter rung scores lower."""

    def __init__(self, fail_after: int | None = None):
        self.calls: list[tuple] = []
        self.fail_after = fail_after

    def _tick(self, what):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append(what)

    def _cost(self, hidden: int, mode: str) -> dict:
        params, lat, size, mem, _ = STUDENTS[hidden]
        lx, sx, _ = MODES[mode]
        latency = {str(t): {"ms": lat * lx / t, "low_ms": lat * lx / t / 2, "high_ms": lat * lx / t * 2}
                   for t in (1, 2)}  # fmt: skip
        return {"latency": latency, "label": "estimated", "size_mb": size * sx, "memory_mb": mem,
                "params": params}  # fmt: skip

    def cost(self, cand):
        self._tick(("cost", cand.key))
        return self._cost(dict(cand.group.student)["hidden"], cand.mode)

    def train(self, group, fidelity, modes):
        hidden = dict(group.student)["hidden"]
        out = {}
        for m in modes:
            self._tick(("train", group.key, fidelity, m))
            metric = STUDENTS[hidden][4] + MODES[m][2] - (1 - fidelity) * 0.05
            out[m] = self._cost(hidden, m) | {"metric": metric, "metric_name": "accuracy",
                                             "teacher_metric": TEACHER}  # fmt: skip
        return out


def _space(seed: int = 0) -> Space:
    groups = [Group((("arch", "mlp"), ("hidden", h))) for h in STUDENTS]
    settings = {"eta": 2, "top_k": 4, "tie": 0.0, "seed": seed}
    return Space(groups, tuple(MODES), (1, 2), (0.5, 1.0), "distill.epochs", 10, settings)


def _search(tmp_path, c: Constraints, ev=None, seed=0, clock=None):
    kw = {"clock": clock} if clock else {}
    return Search(_space(seed), ev or FakeEvaluator(), c, TrialLog(tmp_path / "log"), **kw).run()


def test_the_pick_meets_every_constraint_given(tmp_path):
    c = Constraints(latency_ms=0.03, size_mb=0.03, memory_mb=0.06, max_drop=0.03)
    out = _search(tmp_path, c)
    pick = out["pick"]
    assert misses(pick, c) == [] and out["misses"] == []
    assert pick["latency_ms"] <= 0.03 and pick["size_mb"] <= 0.03 and pick["memory_mb"] <= 0.06
    assert TEACHER - pick["metric"] <= 0.03
    # the best metric among the trials that fit: hidden 32 static at 2 threads
    assert (dict(pick["student"])["hidden"], pick["mode"], pick["threads"]) == (32, "static", 2)
    assert pick["fidelity"] == 1.0


def test_a_metric_floor_is_a_constraint_too(tmp_path):
    out = _search(tmp_path, Constraints(latency_ms=1.0, min_metric=0.975))
    assert out["pick"]["metric"] >= 0.975 and out["misses"] == []


def test_when_nothing_fits_the_closest_is_built_with_what_it_misses(tmp_path):
    c = Constraints(latency_ms=0.001, max_drop=0.001)
    out = _search(tmp_path, c)
    assert out["pick"] is not None  # never empty-handed
    missed = {m["constraint"]: m for m in out["misses"]}
    assert set(missed) == {"latency_ms", "max_drop"}
    lat = missed["latency_ms"]
    assert lat["value"] == out["pick"]["latency_ms"] and lat["by"] == pytest.approx(
        lat["value"] - 0.001
    )
    assert "no trial meets every constraint" in out["why"]


def test_the_front_holds_only_non_dominated_trials(tmp_path):
    out = _search(tmp_path, Constraints(latency_ms=1.0))
    by_id = {t["id"]: t for t in out["trials"]}
    front = [by_id[i] for i in out["front"]]
    assert len(front) >= 3
    for a in front:
        for b in front:
            assert not (b["metric"] > a["metric"] and b["latency_ms"] < a["latency_ms"]
                        and b["size_mb"] < a["size_mb"])  # fmt: skip


def test_the_search_is_deterministic_for_a_seed(tmp_path):
    c = Constraints(latency_ms=0.04, max_drop=0.05)
    a = _search(tmp_path / "a", c, seed=3)
    b = _search(tmp_path / "b", c, seed=3)
    strip = lambda out: [{k: v for k, v in t.items() if k != "seconds"} for t in out["trials"]]  # noqa: E731
    assert strip(a) == strip(b) and a["front"] == b["front"] and a["pick"]["id"] == b["pick"]["id"]


@pytest.mark.parametrize("fail_after", [5, 9, 10, 11])  # while costing; inside a training group
def test_an_interrupted_search_resumes_from_its_trial_log(tmp_path, fail_after):
    c = Constraints(latency_ms=0.04, max_drop=0.05)
    whole = _search(tmp_path / "whole", c)
    broken = FakeEvaluator(fail_after=fail_after)
    with pytest.raises(KeyboardInterrupt):
        _search(tmp_path / "resumed", c, broken)
    again = FakeEvaluator()
    resumed = _search(tmp_path / "resumed", c, again)
    assert resumed["pick"]["id"] == whole["pick"]["id"] and resumed["front"] == whole["front"]
    assert not set(broken.calls) & set(again.calls)  # nothing done before the interrupt reruns
    rerun = FakeEvaluator()
    _search(tmp_path / "resumed", c, rerun)
    assert rerun.calls == []  # a finished search reruns nothing


def test_the_budget_stops_new_trials_and_the_best_so_far_is_kept(tmp_path):
    t = [0.0]

    def clock():
        t[0] += 10.0  # every look at the clock is 10 s later
        return t[0]

    out = _search(tmp_path, Constraints(latency_ms=1.0, budget_minutes=1.0), clock=clock)
    assert out["stopped"] == "budget"
    assert out["pick"] is not None  # never empty-handed, even when no rung was reached


def test_a_short_rungs_score_does_not_rank_the_fully_trained_trials():
    from packager.search.constraints import choose

    def t(i, fidelity, metric, ms):
        return {"id": i, "fidelity": fidelity, "metric": metric, "metric_name": "accuracy",
                "drop": 0.0, "latency_ms": ms, "size_mb": 1.0}  # fmt: skip

    trials = [t("a", 1.0, 0.95, 0.01), t("b", 1.0, 0.97, 0.02), t("c", 0.5, 0.98, 0.01)]
    pick, _ = choose(trials, Constraints(latency_ms=1.0), tie=0.0)
    assert pick["id"] == "b"  # the best fully trained one, not the fastest


def test_a_search_over_more_threads_runs_its_trials_again(tmp_path):
    c = Constraints(latency_ms=1.0)
    first = Search(_space(), FakeEvaluator(), c, TrialLog(tmp_path / "log")).run()
    one = _space()
    one = Space(one.groups, one.modes, (1,), one.fidelity, one.fidelity_field,
                one.fidelity_base, one.settings)  # fmt: skip
    ev = FakeEvaluator()
    Search(one, ev, c, TrialLog(tmp_path / "log")).run()
    assert ev.calls, "a narrower thread space reused records made for another one"
    assert first["pick"]["threads"] == 2


def test_a_miss_against_a_zero_limit_is_a_finite_number():
    (miss,) = misses({"drop": 0.02, "metric": 0.9}, Constraints(latency_ms=1.0, max_drop=0.0))
    assert miss["relative"] == pytest.approx(2.0)

"""The runner and its cache: hits, misses, atomic outputs, resume after an interrupted stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.artifact import Output
from packager.cache import Cache
from packager.config import Config
from packager.errors import StageError
from packager.hashing import content_id
from packager.pipeline import run
from packager.progress import SilentReporter
from packager.recipe import Recipe
from packager.stage import Step, register_stage

CALLS: list[str] = []


class AddConfig(Config):
    value: int = 1
    fail: str = ""  # "", "error" or "interrupt": how the stage dies, for the tests


@register_stage(AddConfig, name="test_add")
def _add(inp, cfg: AddConfig, ctx) -> Output:
    CALLS.append(ctx.step)
    prev = int(inp.file().read_text()) if inp is not None else 0
    (ctx.workdir / "value.txt").write_text(str(prev + cfg.value))
    if cfg.fail == "interrupt":
        raise KeyboardInterrupt
    if cfg.fail == "error":
        raise ValueError("boom")
    return Output("number", {"file": "value.txt"})


def _steps(a=1, b=10, c=100, fail_c=""):
    return [
        Step("a", AddConfig(value=a)),
        Step("b", AddConfig(value=b), ("a",)),
        Step("c", AddConfig(value=c, fail=fail_c), ("b",)),
    ]


def _run(tmp_path: Path, steps, **kw):
    CALLS.clear()
    return run(steps, cache_dir=tmp_path, reporter=SilentReporter(), **kw)


def test_second_run_of_unchanged_steps_reruns_nothing(tmp_path):
    first = _run(tmp_path, _steps())
    assert CALLS == ["a", "b", "c"]
    assert int(first.artifact("c").file().read_text()) == 111
    second = _run(tmp_path, _steps())
    assert CALLS == []
    assert [r.status for r in second.steps] == ["cached"] * 3
    assert second.artifact("c").id == first.artifact("c").id


def test_changing_one_config_reruns_it_and_what_depends_on_it(tmp_path):
    _run(tmp_path, _steps())
    res = _run(tmp_path, _steps(b=20))
    assert CALLS == ["b", "c"]
    assert int(res.artifact("c").file().read_text()) == 121


def test_same_output_content_keeps_downstream_cached(tmp_path):
    # b's key changes but its output does not: c keys on content ids, so it stays cached.
    _run(tmp_path, _steps(a=1, b=10))
    _run(tmp_path, _steps(a=2, b=9))
    assert CALLS == ["a", "b"]


def test_dry_run_reports_cached_and_pending_without_running(tmp_path):
    _run(tmp_path, _steps())
    res = _run(tmp_path, _steps(c=5), dry_run=True)
    assert CALLS == []
    assert [r.status for r in res.steps] == ["cached", "cached", "pending"]


def test_failed_stage_leaves_no_output_and_names_the_step(tmp_path):
    with pytest.raises(StageError, match=r"^c: ValueError: boom \(traceback in"):
        _run(tmp_path, _steps(fail_c="error"))
    cache = Cache(tmp_path)
    assert not list((tmp_path / "test_add").glob(".tmp-*"))
    assert (tmp_path / "last-error.txt").read_text().count("Traceback") == 1
    assert len([p for p in (tmp_path / "test_add").iterdir()]) == 2  # a and b only
    assert cache.sweep() == 0


def test_interrupted_run_resumes_from_finished_stages(tmp_path, monkeypatch):
    # Simulate a kill mid-stage: the temporary folder survives with a dead pid in its name.
    monkeypatch.setattr("packager.cache.shutil.rmtree", lambda *a, **k: None)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, _steps(fail_c="interrupt"))
    monkeypatch.undo()
    leftovers = list((tmp_path / "test_add").glob(".tmp-*"))
    assert len(leftovers) == 1
    dead = leftovers[0].with_name(
        leftovers[0].name.replace(f"-{__import__('os').getpid()}-", "-999999999-")
    )
    leftovers[0].rename(dead)
    res = _run(tmp_path, _steps())
    assert CALLS == ["c"]  # a and b came from the cache
    assert not dead.exists()  # swept
    assert int(res.artifact("c").file().read_text()) == 111


def test_content_id_depends_on_names_and_bytes(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("1")
    a = content_id(tmp_path / "x")
    (tmp_path / "x" / "f").write_text("2")
    b = content_id(tmp_path / "x")
    (tmp_path / "x" / "f").rename(tmp_path / "x" / "g")
    assert len({a, b, content_id(tmp_path / "x")}) == 3


def test_publishing_elsewhere_does_not_change_any_cache_key(tmp_path):
    from packager.cache import stage_key
    from packager.plans import build_plan

    a, b = Recipe(), Recipe.model_validate({"package": {"out_dir": str(tmp_path / "other")}})
    keys = [[(s.config.key_json(), s.extra) for s in build_plan(r)] for r in (a, b)]
    assert keys[0] == keys[1]
    assert a.package.to_json() != b.package.to_json()  # still recorded in the lineage
    assert stage_key("p", 1, a.package.key_json(), []) == stage_key(
        "p", 1, b.package.key_json(), []
    )

"""Spec for host-emulated memory caps (packager/bench/memcap.py, child._cap_memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.bench import BenchError, memcap, run_one

MECHANISM = "cgroup-v2" if memcap.cgroup_parent() else "RLIMIT_AS"


def test_a_cap_below_the_models_need_is_a_does_not_fit_result_not_a_crash(
    heavy_model: Path,
) -> None:
    # 32 MB of weights need ~130 MB resident (model bytes, initializers, prepacking).
    r = run_one(heavy_model, runs=2, warmup=0, memory_cap_mb=90, emulates="rpi4", target="rpi4")
    assert r["status"] == "does-not-fit" and r["kind"] == "host-emulated"
    assert r["message"].startswith(f"does not fit in 90 MB ({MECHANISM})")
    assert r["memory_cap"] == {"mb": 90.0, "mechanism": MECHANISM}
    assert r.get("latency_ms") is None and r.get("peak_rss_mb") is None


def test_a_cap_above_the_models_need_runs_and_stays_under_it(heavy_model: Path) -> None:
    r = run_one(heavy_model, runs=2, warmup=0, memory_cap_mb=400, emulates="rpi4", target="rpi4")
    assert r["status"] == "ok" and r["kind"] == "host-emulated" and r["emulates"] == "rpi4"
    assert 100 < r["peak_rss_mb"] < 400


def test_a_cap_below_the_interpreter_itself_says_so(matmul_model: Path) -> None:
    r = run_one(matmul_model, runs=1, warmup=0, memory_cap_mb=5, emulates="tiny", target="tiny")
    assert r["status"] == "does-not-fit"
    if MECHANISM == "RLIMIT_AS":
        assert "before the model loads" in r["message"]


def test_without_a_cap_the_same_oom_still_raises(matmul_model: Path) -> None:
    with pytest.raises(BenchError, match="out of memory"):
        run_one(matmul_model, batch=2**46, runs=1, warmup=0)


def test_an_emulated_run_needs_a_cap(matmul_model: Path) -> None:
    with pytest.raises(BenchError, match="needs a memory cap"):
        run_one(matmul_model, runs=1, emulates="rpi4")


def test_capped_group_writes_the_limit_and_reads_oom_kills(tmp_path: Path) -> None:
    # A plain folder stands in for a cgroup v2 parent: the files the kernel would provide
    # are written by hand, so the bookkeeping is tested without needing a delegated cgroup.
    with memcap.capped_group(tmp_path, 64) as group:
        assert (group.path / "memory.max").read_text() == str(64 * 1024 * 1024)
        assert not group.oom_killed()
        (group.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
        assert group.oom_killed()
        for f in group.path.iterdir():
            f.unlink()
    assert not group.path.exists()


def test_cgroup_parent_honours_the_environment_only_when_memory_is_delegated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("cpu io\n")
    monkeypatch.setenv(memcap.ENV_VAR, str(tmp_path))
    assert memcap.cgroup_parent() is None
    (tmp_path / "cgroup.subtree_control").write_text("cpu io memory\n")
    assert memcap.cgroup_parent() == tmp_path

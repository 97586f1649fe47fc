"""bench stage: every variant measured in its own process; INT8 slowness is called out."""

from __future__ import annotations

from packager.stages.bench import int8_warnings


def test_every_variant_is_measured_with_cold_start_and_memory(tiny_build):
    results = tiny_build.artifact("bench").meta["results"]
    assert {r["variant"] for r in results} == {"teacher_fp32", "student_fp32", "student_int8"}
    for r in results:
        assert r["kind"] == "measured" and r["machine"]["cpu"]
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["p99"]
        assert r["cold_start_ms"] >= r["session_ms"] > 0
        assert r["peak_rss_mb"] > 0 and r["file_size_mb"] > 0 and r["runs"] == 20


def _r(variant, threads, p50):
    return {"variant": variant, "threads": threads, "latency_ms": {"p50": p50}}


def test_int8_not_faster_than_fp32_is_warned_per_thread_count():
    res = [
        _r("student_fp32", 1, 1.0),
        _r("student_int8", 1, 1.2),
        _r("student_fp32", 2, 1.0),
        _r("student_int8", 2, 0.5),
    ]
    w = int8_warnings(res)
    assert len(w) == 1 and "1 thread(s)" in w[0] and "1.200 ms vs 1.000 ms" in w[0]
    assert int8_warnings([_r("student_fp32", 1, 1.0), _r("student_int8", 1, 0.9)]) == []

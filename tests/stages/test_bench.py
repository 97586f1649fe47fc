"""bench stage: every variant measured in its own process; INT8 slowness is called out; the
package carries report.html; a recipe's targets add labelled emulated and estimated rows."""

from __future__ import annotations

import zipfile

from packager.bench import validate_result
from packager.stages.bench import quantized_warnings


def test_every_variant_is_measured_with_cold_start_and_memory(tiny_build):
    results = tiny_build.artifact("bench").meta["results"]
    assert {r["variant"] for r in results} == {"teacher_fp32", "student_fp32", "student_int8"}
    for r in results:
        validate_result(r)
        assert r["kind"] == "measured" and r["target"] == "host" and r["machine"]["cpu"]
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["p99"]
        assert r["cold_start_ms"] >= r["session_ms"] > 0
        assert r["peak_rss_mb"] > 0 and r["file_size_mb"] > 0 and r["runs"] == 20
        assert "latencies_ms" not in r  # raw runs stay in bench.json, out of the manifest


def test_the_package_carries_an_html_report_with_plots(tiny_build):
    zf = zipfile.ZipFile(tiny_build.package_path)
    html = zf.read("report.html").decode()
    manifest = __import__("json").loads(zf.read("manifest.json"))
    assert "report.html" in manifest["files"]
    # distribution, latency vs accuracy (the build knows accuracy), no thread sweep here
    assert html.count("data:image/png;base64,") == 2
    assert "student_int8" in html and "measured" in html


def test_recipe_targets_add_emulated_and_estimated_rows(tiny_build, cache_dir, tmp_path):
    from tiny_models import tiny_recipe

    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.progress import SilentReporter

    recipe = tiny_recipe(
        bench={"targets": ["host", "rpi5"], "runs": 3, "warmup": 0},
        package={"out_dir": str(tmp_path)},
    )
    steps = [s for s in build_plan(recipe) if s.name != "package"]
    results = run(steps, cache_dir=cache_dir, reporter=SilentReporter())
    rows = results.artifact("bench").meta["results"]
    kinds = {(r["variant"], r["target"], r["kind"], r["threads"]) for r in rows}
    for variant in ("teacher_fp32", "student_fp32", "student_int8"):
        assert (variant, "host", "measured", 1) in kinds
        for kind in ("host-emulated", "estimated"):
            assert {(variant, "rpi5", kind, t) for t in (1, 4)} <= kinds
    # A student has fewer MACs than its teacher, in the estimate as in the graph.
    est = {r["variant"]: r["estimate"]["macs"] for r in rows if r["kind"] == "estimated"}
    assert est["student_fp32"] < est["teacher_fp32"]


def _r(variant, threads, p50, kind="measured", batch=1):
    return {
        "variant": variant,
        "threads": threads,
        "kind": kind,
        "target": "host",
        "batch": batch,
        "latency_ms": {"p50": p50},
    }


def test_int8_not_faster_than_fp32_is_warned_per_thread_count():
    res = [
        _r("student_fp32", 1, 1.0),
        _r("student_int8", 1, 1.2),
        _r("student_fp32", 2, 1.0),
        _r("student_int8", 2, 0.5),
    ]
    w = quantized_warnings(res)
    assert len(w) == 1 and "1 thread(s)" in w[0] and "1.200 ms vs 1.000 ms" in w[0]
    assert quantized_warnings([_r("student_fp32", 1, 1.0), _r("student_int8", 1, 0.9)]) == []


def test_int8_warnings_judge_only_host_measurements_at_the_smallest_batch():
    res = [
        _r("student_fp32", 1, 1.0),
        _r("student_int8", 1, 0.9),
        _r("student_fp32", 1, 1.0, kind="host-emulated"),
        _r("student_int8", 1, 5.0, kind="host-emulated"),
        _r("student_fp32", 1, 8.0, batch=8),
        _r("student_int8", 1, 9.0, batch=8),
    ]
    assert quantized_warnings(res) == []


def test_int8_slower_at_several_thread_counts_is_one_warning_naming_each():
    # main: one block per thread count, and the quantize step's own verdict beside them.
    res = [_r("student_fp32", t, 1.0) for t in (1, 2)]
    res += [_r("student_int8", 1, 1.2), _r("student_int8", 2, 1.1)]
    (w,) = quantized_warnings(res)
    assert "1 thread(s) p50 1.200 ms vs 1.000 ms" in w and "2 thread(s) p50 1.100 ms" in w
    assert w.startswith("student_int8 is not faster than fp32")

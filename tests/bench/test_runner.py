"""Spec for packager/bench/runner.py, child.py and machine.py."""

from __future__ import annotations

import ast
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from packager.bench import BenchError, host_info, run_many, run_one
from packager.bench import runner as runner_module
from packager.bench.runner import CHILD

# The child is copied to devices and run with their python: nothing else may be imported.
CHILD_ALLOWED_IMPORTS = set(sys.stdlib_module_names) | {"numpy", "onnxruntime"}


def _assert_one_line(exc: pytest.ExceptionInfo[BenchError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def test_run_one_reports_positive_numbers_and_the_requested_runs(matmul_model: Path) -> None:
    r = run_one(matmul_model, runs=7, warmup=2, batch=3)
    assert r["schema"] == "edgepack.bench/1"
    assert r["kind"] == "measured"
    assert r["runs"] == 7 and r["latency_ms"]["n"] == 7
    lat = r["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["throughput"] == pytest.approx(3 * 1000.0 / lat["p50"])
    assert r["session_ms"] > 0 and r["first_run_ms"] > 0
    assert r["cold_start_ms"] == pytest.approx(r["session_ms"] + r["first_run_ms"])
    assert r["peak_rss_mb"] > r["baseline_rss_mb"] > 0
    assert r["model_rss_mb"] == pytest.approx(r["peak_rss_mb"] - r["baseline_rss_mb"])
    assert r["file_size_mb"] == pytest.approx(matmul_model.stat().st_size / 1e6)
    assert r["inputs"] == {"x": [3, 64]}
    assert r["machine"] == host_info()
    assert "latencies_ms" not in r
    json.dumps(r, allow_nan=False)  # records go into manifests: plain JSON only


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")
def test_run_one_peak_rss_excludes_the_parent_process_memory(matmul_model: Path) -> None:
    # getrusage's ru_maxrss carries the parent's peak across fork + exec; a bloated
    # parent (a pipeline holding torch and a teacher) must not inflate the child's number.
    ballast = np.ones(400 * 1024 * 1024, dtype=np.uint8)
    r = run_one(matmul_model, runs=1, warmup=0)
    assert ballast[-1] == 1  # keep the ballast resident until the child has run
    assert r["rss_source"] == "VmHWM"
    assert r["peak_rss_mb"] < 300


def test_run_one_keeps_raw_latencies_when_asked(matmul_model: Path) -> None:
    r = run_one(matmul_model, runs=5, warmup=0, keep_raw=True)
    assert len(r["latencies_ms"]) == 5
    assert min(r["latencies_ms"]) == pytest.approx(r["latency_ms"]["min"])


def test_run_one_records_threads_in_session_options(matmul_model: Path) -> None:
    r = run_one(matmul_model, threads=2, runs=3, warmup=0)
    assert r["threads"] == 2
    assert r["session_options"]["intra_op_num_threads"] == 2
    assert r["session_options"]["inter_op_num_threads"] == 1
    assert r["session_options"]["graph_optimization"] == "all"


def test_run_one_stops_at_the_seconds_budget(matmul_model: Path) -> None:
    start = time.monotonic()
    r = run_one(matmul_model, runs=10**6, seconds=0.2, warmup=0, keep_raw=True)
    assert time.monotonic() - start < 10
    assert 1 < r["runs"] < 10**6
    assert sum(r["latencies_ms"]) <= 1000  # a fifth of a second of runs, not a full second


def test_run_one_stops_at_runs_before_a_long_budget(matmul_model: Path) -> None:
    r = run_one(matmul_model, runs=3, seconds=60, warmup=0)
    assert r["runs"] == 3


def test_run_one_binds_symbolic_batch_and_named_dims(token_model: Path) -> None:
    r = run_one(token_model, batch=3, dims={"sequence": 16}, runs=2, warmup=0)
    assert r["inputs"] == {"input_ids": [3, 16], "attention_mask": [3, 16]}


def test_run_one_leaves_unbound_named_dims_at_one(token_model: Path) -> None:
    r = run_one(token_model, batch=2, runs=1, warmup=0)
    assert r["inputs"]["input_ids"] == [2, 1]


def test_run_one_uses_given_feeds(matmul_model: Path) -> None:
    r = run_one(matmul_model, inputs={"x": np.ones((5, 64), np.float32)}, runs=2, warmup=0)
    assert r["inputs"] == {"x": [5, 64]}


def test_run_one_names_the_expected_inputs_when_feeds_do_not_match(
    matmul_model: Path, tmp_path: Path
) -> None:
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, wrong=np.ones((1, 64), np.float32))
    with pytest.raises(BenchError) as exc:
        run_one(matmul_model, inputs=feeds, runs=1, warmup=0)
    assert "['x']" in _assert_one_line(exc)


def test_run_one_missing_model_raises_one_line_bench_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError) as exc:
        run_one(tmp_path / "nope.onnx", runs=1)
    message = _assert_one_line(exc)
    assert "not found" in message and "nope.onnx" in message


def test_run_one_corrupt_model_raises_bench_error_not_a_traceback(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(BenchError) as exc:
        run_one(corrupt, runs=1)
    assert "corrupt.onnx" in _assert_one_line(exc)


def test_run_one_reports_allocation_failure_as_out_of_memory(matmul_model: Path) -> None:
    # 2**46 x 64 float32 is 2**54 bytes: larger than any address space, so it fails fast.
    with pytest.raises(BenchError) as exc:
        run_one(matmul_model, batch=2**46, runs=1, warmup=0)
    assert "out of memory" in _assert_one_line(exc)


def test_run_one_timeout_raises_bench_error(matmul_model: Path) -> None:
    with pytest.raises(BenchError) as exc:
        run_one(matmul_model, runs=1, timeout=0.01)
    assert "timed out" in _assert_one_line(exc)


def test_run_one_needs_runs_or_seconds(matmul_model: Path) -> None:
    with pytest.raises(BenchError, match="runs or seconds"):
        run_one(matmul_model, runs=None, seconds=None)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
        ("import sys; print('hello'); sys.stderr.write('boom at the end\\n')", "no JSON"),
        ("import sys; sys.stderr.write('first\\nboom at the end\\n'); sys.exit(3)", "status 3"),
    ],
)
def test_a_misbehaving_child_raises_bench_error_with_its_last_stderr_line(
    matmul_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, expected: str
) -> None:
    fake = tmp_path / "child.py"
    fake.write_text(script)
    monkeypatch.setattr(runner_module, "CHILD", fake)
    with pytest.raises(BenchError) as exc:
        run_one(matmul_model, runs=1)
    message = _assert_one_line(exc)
    assert expected in message
    if "boom" in script:
        assert "boom at the end" in message and "first" not in message


def test_run_many_runs_in_order_and_reports_progress(matmul_model: Path) -> None:
    configs = [
        {"model": matmul_model, "threads": 1, "runs": 2, "warmup": 0},
        {"model": matmul_model, "threads": 2, "runs": 3, "warmup": 0},
    ]
    calls = []
    results = run_many(configs, progress=lambda i, n, cfg: calls.append((i, n, cfg["threads"])))
    assert calls == [(0, 2, 1), (1, 2, 2)]
    assert [(r["threads"], r["runs"]) for r in results] == [(1, 2), (2, 3)]


def test_run_many_names_the_failing_config(matmul_model: Path, tmp_path: Path) -> None:
    configs = [{"model": matmul_model, "runs": 1}, {"model": tmp_path / "gone.onnx", "runs": 1}]
    with pytest.raises(BenchError, match=r"config 2/2 \(gone.onnx\)"):
        run_many(configs)


def test_child_prints_exactly_one_json_object_for_a_spec_on_stdin(matmul_model: Path) -> None:
    spec = {"model": str(matmul_model), "runs": 2, "warmup": 0}
    proc = subprocess.run(
        [sys.executable, str(CHILD)], input=json.dumps(spec), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["ok"] is True


def test_child_failure_is_json_with_exit_status_one(tmp_path: Path) -> None:
    spec = {"model": str(tmp_path / "missing.onnx"), "runs": 1}
    proc = subprocess.run(
        [sys.executable, str(CHILD)], input=json.dumps(spec), capture_output=True, text=True
    )
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["ok"] is False and "not found" in report["error"]


def test_child_source_imports_only_stdlib_numpy_and_onnxruntime() -> None:
    tree = ast.parse(CHILD.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports break when child.py is copied alone"
            imported.add(node.module.split(".")[0])
    assert imported, "the AST walk found no imports at all"
    assert imported <= CHILD_ALLOWED_IMPORTS, imported - CHILD_ALLOWED_IMPORTS


def test_child_run_imports_no_torch_and_no_packager(matmul_model: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": str(matmul_model), "runs": 1, "warmup": 0}))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(CHILD), str(spec)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "onnxruntime" in modules  # proves the import log was read at all
    assert not modules & {"torch", "packager", "transformers"}


def test_host_info_describes_cpu_and_arch_and_returns_a_copy() -> None:
    info = host_info()
    assert isinstance(info["cpu"], str) and info["cpu"].strip()
    assert info["arch"] == platform.machine() and info["arch"]
    assert info["logical_cores"] >= 1
    assert info["memory_mb"] > 0
    assert info["python"] == platform.python_version()
    assert isinstance(info["isa"], list)
    info["cpu"] = "changed"
    info["isa"].append("changed")
    assert host_info()["cpu"] != "changed" and "changed" not in host_info()["isa"]


TIME = Path("/usr/bin/time")


@pytest.mark.skipif(
    not TIME.exists(),
    reason="needs GNU time at /usr/bin/time (apt install time; scripts/setup_system.sh does)",
)
def test_child_peak_rss_agrees_with_usr_bin_time_on_the_same_run_within_5_percent(
    heavy_model: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": str(heavy_model), "runs": 3, "warmup": 1}))
    proc = subprocess.run(
        [str(TIME), "-v", sys.executable, str(CHILD), str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    line = next(x for x in proc.stderr.splitlines() if "Maximum resident set size" in x)
    time_mb = int(line.rsplit(":", 1)[1]) / 1024
    assert report["peak_rss_mb"] > 100  # the 32 MB model really was loaded
    assert report["peak_rss_mb"] == pytest.approx(time_mb, rel=0.05)

"""Spec for packager/bench/remote.py: `measured` over ssh, against a private sshd on 127.0.0.1.

The "device" is this machine: the `sshd` fixture (conftest.py) starts its own sshd and the
remote python is this venv's, which has numpy and onnxruntime.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from packager.bench import SCHEMA, BenchError, validate_result
from packager.bench.remote import run_remote


def _remote_dirs() -> set[str]:
    return set(glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"), "edgepack-remote.*")))


def test_run_remote_returns_a_measured_record_of_the_device(sshd, matmul_model: Path) -> None:
    target, opts = sshd
    before = _remote_dirs()
    r = run_remote(
        target,
        matmul_model,
        runs=9,
        warmup=2,
        batch=2,
        ssh_options=opts,
        remote_python=sys.executable,
    )
    validate_result(r)  # the schema shared by host, emulated and remote records
    assert r["kind"] == "measured" and r["schema"] == SCHEMA and r["input_source"] == "generated"
    assert r["target"] == target
    assert r["model"] == str(matmul_model)
    assert r["runs"] == 9 and r["latency_ms"]["n"] == 9
    lat = r["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"] < 10_000
    assert r["cold_start_ms"] == pytest.approx(r["session_ms"] + r["first_run_ms"])
    assert r["peak_rss_mb"] > r["baseline_rss_mb"] > 0
    assert r["file_size_mb"] == pytest.approx(matmul_model.stat().st_size / 1e6)
    assert r["inputs"] == {"x": [2, 64]}
    # The machine was described on the device (here the same box, but read over there).
    assert r["machine"]["arch"] == platform.machine()
    assert r["machine"]["logical_cores"] == os.cpu_count()
    assert r["onnxruntime"] == r["machine"]["onnxruntime"]
    assert _remote_dirs() == before  # the device's temp dir was removed


def test_run_remote_uses_the_given_inputs(sshd, matmul_model: Path) -> None:
    target, opts = sshd
    feeds = {"x": np.ones((5, 64), dtype=np.float32)}
    r = run_remote(
        target,
        matmul_model,
        runs=2,
        warmup=0,
        inputs=feeds,
        ssh_options=opts,
        remote_python=sys.executable,
    )
    assert r["inputs"] == {"x": [5, 64]}


def test_run_remote_without_python_on_the_device_is_one_line(sshd, matmul_model: Path) -> None:
    target, opts = sshd
    with pytest.raises(BenchError, match="has no /nonexistent/python3") as exc:
        run_remote(
            target, matmul_model, runs=1, ssh_options=opts, remote_python="/nonexistent/python3"
        )
    assert "\n" not in str(exc.value)


def test_run_remote_without_onnxruntime_on_the_device_says_what_to_install(
    sshd, matmul_model: Path, tmp_path: Path
) -> None:
    target, opts = sshd
    # A python without its site-packages: the stdlib probe works, numpy/onnxruntime do not.
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    bare.chmod(0o755)
    with pytest.raises(BenchError, match=r"No module named .*install numpy and onnxruntime"):
        run_remote(target, matmul_model, runs=1, ssh_options=opts, remote_python=str(bare))


def test_run_remote_child_failure_is_reported(sshd, tmp_path: Path) -> None:
    target, opts = sshd
    # A valid model whose string input the child cannot generate: fails on the device.
    graph = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["y"])],
        "strings",
        [helper.make_tensor_value_info("s", TensorProto.STRING, [1])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, [1])],
    )
    model = tmp_path / "strings.onnx"
    onnx.save(helper.make_model(graph), model)
    with pytest.raises(BenchError, match=r"benchmark of strings.onnx on ssh://.* failed: .*string"):
        run_remote(target, model, runs=1, ssh_options=opts, remote_python=sys.executable)


def test_run_remote_copies_external_data_with_the_model(
    sshd, matmul_model: Path, tmp_path: Path
) -> None:
    target, opts = sshd
    model = tmp_path / "big.onnx"
    onnx.save(
        onnx.load(matmul_model),
        model,
        save_as_external_data=True,
        location="big.bin",
        size_threshold=0,
    )
    assert (tmp_path / "big.bin").is_file()
    r = run_remote(target, model, runs=2, warmup=0, ssh_options=opts, remote_python=sys.executable)
    assert r["kind"] == "measured" and r["latency_ms"]["n"] == 2


def test_run_remote_refuses_an_unreadable_model_before_connecting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(BenchError, match=r"bad\.onnx is not a readable ONNX model"):
        run_remote("ssh://nobody@127.0.0.1:1", bad, runs=1)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs ssh (apt install openssh-client)")
def test_run_remote_unreachable_host_is_one_line(matmul_model: Path, free_port: int) -> None:
    port = free_port  # nothing listens there
    with pytest.raises(BenchError, match=r"cannot reach root@127\.0\.0\.1 over ssh") as exc:
        run_remote(
            f"ssh://root@127.0.0.1:{port}", matmul_model, runs=1, ssh_options=["-F", "/dev/null"]
        )
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://pi@host", "expected ssh://user@host"),
        ("ssh://pi:secret@host", "no password"),
        ("ssh://pi@host:notaport", "bad ssh target"),
        ("ssh://pi@host/some/path", "no path"),
    ],
)
def test_run_remote_rejects_bad_targets(target: str, message: str, matmul_model: Path) -> None:
    with pytest.raises(BenchError, match=message):
        run_remote(target, matmul_model, runs=1)

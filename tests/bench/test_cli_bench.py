"""Spec for `edgepack bench` (packager/cli_bench.py, packager/bench/suite.py, the bench stage)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from packager.bench import validate_result
from packager.cli import cli


def _bench(tmp_path: Path, *args: str):
    result = CliRunner().invoke(
        cli, ["bench", *args, "--cache-dir", str(tmp_path / "cache")], catch_exceptions=False
    )
    return result


@pytest.fixture(scope="module")
def host_and_rpi4(matmul_model: Path, token_model: Path, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("bench")
    result = _bench(
        out,
        str(matmul_model),
        "--compare", str(token_model),
        "--target", "host",
        "--target", "rpi4",
        "--threads", "1,2",
        "--runs", "5",
        "--warmup", "1",
        "--json", str(out / "r.json"),
        "--html", str(out / "r.html"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "r.json").read_text()), (out / "r.html").read_text()


def test_every_record_validates_and_says_its_kind(host_and_rpi4) -> None:
    _, doc, _ = host_and_rpi4
    assert doc["schema"] == "edgepack.bench/1"
    for r in doc["results"]:
        validate_result(r)
    kinds = {(r["model_name"], r["target"], r["kind"], r["threads"]) for r in doc["results"]}
    for model in ("matmul.onnx", "tokens.onnx"):
        assert {(model, "host", "measured", t) for t in (1, 2)} <= kinds
        # rpi4: the requested threads plus the device's own 4 cores, emulated and estimated.
        for kind in ("host-emulated", "estimated"):
            assert {(model, "rpi4", kind, t) for t in (1, 2, 4)} <= kinds
    assert len(doc["results"]) == 2 * (2 + 3 + 3)


def test_emulated_rows_carry_the_cap_and_say_whose_cpu_ran_them(host_and_rpi4) -> None:
    _, doc, _ = host_and_rpi4
    emulated = [r for r in doc["results"] if r["kind"] == "host-emulated"]
    for r in emulated:
        assert r["memory_cap"]["mb"] == 4096 and r["emulates"] == "rpi4"
        assert r["session_options"]["intra_op_num_threads"] == r["threads"]
        assert "not a Cortex-A72" in r["notes"][0]


def test_estimated_rows_have_no_measurement_and_cite_their_peaks(host_and_rpi4) -> None:
    _, doc, _ = host_and_rpi4
    for r in (r for r in doc["results"] if r["kind"] == "estimated"):
        assert r.get("latency_ms") is None and r.get("peak_rss_mb") is None
        assert r["estimate"]["macs"] == 64 * 64 or r["model_name"] == "tokens.onnx"
        assert "Raspberry Pi 4" in r["estimate"]["sources"]["peak_gflops"]


def test_the_table_labels_kinds_and_compares_with_the_first_model(host_and_rpi4) -> None:
    result, _, _ = host_and_rpi4
    out = result.output
    assert "host-emulated" in out and "estimated" in out and "measured" in out
    assert "vs first" in out and "baseline" in out
    assert "slower" in out or "faster" in out or "same" in out
    assert "items/s (p50)" in out
    assert "rpi4: ran on" in out  # emulated numbers name the CPU that produced them


def test_the_html_report_embeds_plots_and_every_row(host_and_rpi4) -> None:
    _, doc, html = host_and_rpi4
    # distribution, threads scaling and the targets' estimates; no metric: no accuracy section
    assert html.count("data:image/png;base64,") == 3
    assert "Latency vs accuracy" not in html and "not enough data" not in html
    assert html.count("<tr class=") == len(doc["results"])


def test_quiet_prints_the_table_without_the_stage_lines(matmul_model, tmp_path) -> None:
    args = (str(matmul_model), "--runs", "2", "--warmup", "0")
    loud = _bench(tmp_path, *args).output
    quiet = _bench(tmp_path, *args, "-q").output
    assert "✓ bench" in loud and "✓ bench" not in quiet
    assert "items/s (p50)" in quiet


def test_rerunning_measures_again_instead_of_reusing_the_cache(matmul_model, tmp_path) -> None:
    args = (str(matmul_model), "--runs", "2", "--warmup", "0", "--json")
    _bench(tmp_path, *args, str(tmp_path / "a.json"))
    _bench(tmp_path, *args, str(tmp_path / "b.json"))
    a = json.loads((tmp_path / "a.json").read_text())["results"][0]
    b = json.loads((tmp_path / "b.json").read_text())["results"][0]
    assert a["latencies_ms"] != b["latencies_ms"]


def _folder_package(tmp_path: Path, model: Path) -> Path:
    """A minimal package folder a device would accept: the model, three sample inputs and
    their outputs, a manifest with hashes and sizes (what the published schema requires)."""
    from packager.onnx_utils import io_spec, session

    pkg = tmp_path / "mm.edgepack"
    (pkg / "samples").mkdir(parents=True)
    (pkg / "model.onnx").write_bytes(model.read_bytes())
    x = np.arange(3 * 64, dtype=np.float32).reshape(3, 64)
    np.save(pkg / "samples/input.npy", x)
    io = io_spec(pkg / "model.onnx")
    np.save(pkg / "samples/y.npy", session(pkg / "model.onnx").run(None, {"x": x})[0])
    files = {
        name: {
            "sha256": hashlib.sha256((pkg / name).read_bytes()).hexdigest(),
            "size": (pkg / name).stat().st_size,
        }
        for name in ("model.onnx", "samples/input.npy", "samples/y.npy")
    }
    manifest = {
        "schema_version": "1.0",
        "name": "mm",
        "version": "0.1.0",
        "task": "classification",
        "model": "model.onnx",
        **io,
        "samples": {
            "inputs": {"x": "samples/input.npy"},
            "outputs": {io["outputs"][0]["name"]: "samples/y.npy"},
            "atol": 1e-4,
            "rtol": 1e-3,
        },
        "files": files,
    }
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    return pkg


def test_a_package_is_benchmarked_on_its_own_samples_cycled_to_the_batch(
    matmul_model: Path, tmp_path: Path
) -> None:
    pkg = _folder_package(tmp_path, matmul_model)
    out = tmp_path / "p.json"
    result = _bench(tmp_path, str(pkg), "--batch", "1,5", "--runs", "2", "--json", str(out))
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert [(r["batch"], r["inputs"], r["input_source"]) for r in rows] == [
        (1, {"x": [1, 64]}, "samples"),
        (5, {"x": [5, 64]}, "samples"),
    ]
    assert rows[0]["model_name"] == "mm"


def test_a_tampered_package_is_refused_in_one_line(matmul_model: Path, tmp_path: Path) -> None:
    pkg = _folder_package(tmp_path, matmul_model)
    np.save(pkg / "samples/input.npy", np.zeros((3, 64), np.float32))
    result = _bench(tmp_path, str(pkg), "--runs", "1")
    assert result.exit_code == 5  # a refused package, as `verify` and `run` say
    assert "samples/input.npy: sha256 mismatch" in result.output


def test_a_memory_cap_below_need_is_reported_in_the_table_not_a_crash(
    heavy_model: Path, tmp_path: Path
) -> None:
    result = _bench(
        tmp_path, str(heavy_model), "--target", "rpi4", "--threads", "4", "--runs", "1",
        "--memory-cap", "90", "--json", str(tmp_path / "o.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "does not fit in 90 MB" in result.output
    status = {
        r["kind"]: r["status"] for r in json.loads((tmp_path / "o.json").read_text())["results"]
    }
    # The estimate counts only weights + activations (32 MB), which do fit in 90 MB; the
    # emulated run also pays for python, onnxruntime and weight copies, and does not.
    assert status == {"host-emulated": "does-not-fit", "estimated": "ok"}


def test_an_estimate_says_does_not_fit_when_the_weights_alone_exceed_the_cap(
    heavy_model: Path,
) -> None:
    from packager.bench.suite import estimate
    from packager.bench.targets import load_targets

    r = estimate(heavy_model, load_targets()["rpi4"], threads=1, memory_cap_mb=20)
    assert r["status"] == "does-not-fit" and "does not fit in 20 MB (estimated)" in r["message"]
    assert "need 32 MB" in r["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.onnx"], "nope.onnx: file not found"),
        (["{model}", "--runs", "3", "--seconds", "1"], "--runs or --seconds, not both"),
        (["{model}", "--target", "rpi9"], "unknown target 'rpi9'"),
        (["{model}", "--threads", "0"], "integers >= 1"),
        (["{model}", "--dim", "sequence"], "NAME=INT"),
    ],
)
def test_bad_input_is_one_error_line(matmul_model, tmp_path, args, message) -> None:
    args = [a.replace("{model}", str(matmul_model)) for a in args]
    result = CliRunner().invoke(cli, ["bench", *args, "--cache-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_an_ssh_target_is_measured_on_the_device_end_to_end(
    sshd, matmul_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`edgepack bench M --target ssh://...` against the private sshd, configured the way a
    user would: ssh options and the device's python from the environment."""
    target, opts = sshd
    monkeypatch.setenv("EDGEPACK_SSH_OPTS", shlex.join(opts))
    monkeypatch.setenv("EDGEPACK_REMOTE_PYTHON", sys.executable)
    result = _bench(
        tmp_path, str(matmul_model), "--target", target, "--runs", "5", "--warmup", "1",
        "--json", str(tmp_path / "o.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "o.json").read_text())["results"]
    assert len(rows) == 1
    r = rows[0]
    validate_result(r)
    assert (r["kind"], r["target"], r["status"]) == ("measured", target, "ok")
    assert r["model_name"] == "matmul.onnx" and r["latency_ms"]["n"] == 5
    # The machine was probed over there (the same box here): described, not assumed.
    assert r["machine"]["arch"] == platform.machine()
    assert r["machine"]["logical_cores"] == os.cpu_count()
    assert r["machine"]["onnxruntime"] == r["onnxruntime"]
    assert target in result.output

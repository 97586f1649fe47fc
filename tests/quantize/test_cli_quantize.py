"""`edgepack quantize MODEL.onnx -o OUT.onnx`: a single-stage recipe through the runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from packager.cli import cli
from packager.onnx_utils import session


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_quantize_writes_the_model_its_report_and_the_search_table(outlier, tmp_path):
    out = tmp_path / "out" / "m.int8.onnx"
    res = _invoke(
        "quantize",
        outlier["model"],
        "-o",
        out,
        "--mode",
        "static",
        "--calib",
        outlier["calib"],
        "--eval",
        outlier["eval"],
        "--max-drop",
        "0.05",
        "--no-speed-check",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert res.exit_code == 0, res.output
    assert "kept in float: spread" in res.output and f"wrote {out}" in res.output
    report = json.loads((tmp_path / "out" / "m.int8.quantize.json").read_text())
    assert report["mode"] == "static" and report["budget_met"] is True
    assert "spread" in (tmp_path / "out" / "m.int8.search.md").read_text()
    assert session(out).get_inputs()[0].name == "x"
    assert not list((tmp_path / "out").glob(".*tmp*"))  # no temporary file left behind


def test_missed_budget_exits_4_after_writing_the_best_model(outlier, tmp_path, monkeypatch):
    from packager.quantize import search

    monkeypatch.setattr(search, "schedule", lambda n, m: [])  # no search trial at all
    out = tmp_path / "m.onnx"
    res = _invoke(
        "quantize",
        outlier["model"],
        "-o",
        out,
        "--mode",
        "static",
        "--calib",
        outlier["calib"],
        "--eval",
        outlier["eval"],
        "--max-drop",
        "0.05",
        "--max-trials",
        "1",
        "--no-speed-check",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert res.exit_code == 4
    assert out.is_file() and (tmp_path / "m.search.md").is_file()


def test_dynamic_needs_no_data_and_records_the_speed_check(outlier, tmp_path, without_vnni):
    out = tmp_path / "d.onnx"
    res = _invoke(
        "quantize", outlier["model"], "-o", out, "--threads", "1", "--cache-dir", tmp_path / "c"
    )
    assert res.exit_code == 0, res.output
    assert "p50 latency, 1 thread(s): fp32" in res.output
    report = json.loads((tmp_path / "d.quantize.json").read_text())
    assert report["mode"] == "dynamic" and report["speed"]["p50_ms"] > 0
    assert report["reduce_range"] is True  # auto on x86 without VNNI: 7-bit weights
    full = tmp_path / "full.onnx"
    res = _invoke(
        "quantize", outlier["model"], "-o", full, "--full-range", "--no-speed-check",
        "--cache-dir", tmp_path / "c",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "full.quantize.json").read_text())["reduce_range"] is False


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "packager.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_bad_inputs_are_one_line_errors(outlier, tmp_path):
    cases = [
        (["--mode", "static"], 2, "quantize.calib is required for mode=static (--calib DATA)"),
        (["--mode", "static", "--calib", "x.h5"], 2, "unsupported data file '.h5'"),
        (["--max-drop", "0.1"], 2, "quantize.max_drop needs evaluation data"),
        (
            ["--mode", "fp16", "--format", "qdq"],
            2,
            "quantize.format applies to mode static, not fp16",
        ),
        (["--mode", "static", "--embeddings", "int8"], 2, "mode static takes embeddings auto"),
        (["--mode", "int4", "--block-size", "24"], 2, "block_size must be a power of two"),
        (["--exclude", "nope"], 2, "no node named 'nope'"),
        (["--mode", "static", "--calib", "fifo.npz"], 2, "fifo.npz: not a regular file"),
    ]
    (tmp_path / "x.h5").write_text("1\n")
    os.mkfifo(tmp_path / "fifo.npz")  # reading it would block: refused before any open
    for extra, code, message in cases:
        out = _cli(
            "quantize",
            outlier["model"],
            "-o",
            "o.onnx",
            *extra,
            "-q",
            "--cache-dir",
            "c",
            cwd=tmp_path,
        )
        assert out.returncode == code, (extra, out.stderr)
        assert message in out.stderr and out.stderr.count("\n") == 1, out.stderr
        assert not (tmp_path / "o.onnx").exists()
    missing = _cli("quantize", "nope.onnx", "-o", "o.onnx", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.onnx: file not found" in missing.stderr


def test_optimize_and_slim_run_first_and_report_node_counts(transformer, tmp_path):
    out = tmp_path / "t.int8.onnx"
    res = _invoke(
        "quantize",
        transformer["model"],
        "-o",
        out,
        "--optimize",
        "basic",
        "--slim",
        "--no-speed-check",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if "optimize: onnxslim + onnxruntime-basic" in x)
    before, after = (int(n) for n in line.split(": ")[-1].removesuffix(" nodes").split(" -> "))
    assert after < before
    assert "Model Name" not in res.output  # onnxslim's own table (with cache paths) stays quiet
    assert str(tmp_path / "cache") not in res.output
    assert session(out).get_inputs()[0].name == "input_ids"


def test_an_invalid_onnx_file_is_reported_by_the_users_path_only(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not protobuf")
    out = _cli("quantize", bad, "-o", "o.onnx", "-q", "--cache-dir", "cache", cwd=tmp_path)
    assert out.returncode != 0
    error = out.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {bad}: not a valid ONNX model"), out.stderr
    assert "cache" not in error and ".tmp-" not in error

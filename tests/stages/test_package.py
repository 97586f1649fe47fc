"""package stage: a zip whose manifest describes every file, lineage, metrics and benchmarks."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest


def _open(tiny_build):
    zf = zipfile.ZipFile(tiny_build.package_path)
    return zf, json.loads(zf.read("manifest.json"))


def test_package_is_published_with_the_documented_files(tiny_build):
    zf, m = _open(tiny_build)
    names = set(zf.namelist())
    assert tiny_build.package_path.name == "digits-tiny.edgepack"
    assert {
        "manifest.json",
        "model.onnx",
        "README.md",
        "report.json",
        "report.md",
        "samples/raw.npy",
        "samples/input.npy",
        "samples/logits.npy",
    } <= names
    assert set(m["files"]) == names - {"manifest.json"}
    for name, rec in m["files"].items():
        data = zf.read(name)
        assert rec["size"] == len(data) and rec["sha256"] == hashlib.sha256(data).hexdigest()


def test_manifest_records_io_preprocessing_labels_and_samples(tiny_build):
    zf, m = _open(tiny_build)
    assert m["schema_version"] == "1.3"
    assert m["inputs"][0]["shape"] == ["batch", 1, 8, 8] and m["outputs"][0]["name"] == "logits"
    assert m["preprocessing"]["type"] == "tensor" and m["preprocessing"]["scale"] == 1 / 16
    assert m["labels"] == [str(i) for i in range(10)]
    assert m["samples"]["count"] == 4
    import io

    logits = np.load(io.BytesIO(zf.read("samples/logits.npy")))
    assert logits.shape == (4, 10)


def test_manifest_lineage_metrics_and_measured_benchmarks(tiny_build):
    _, m = _open(tiny_build)
    lin = m["lineage"]
    assert lin["recipe"]["name"] == "digits-tiny"
    steps = [s["step"] for s in lin["stages"]]
    assert steps[:4] == ["provenance", "data", "teacher", "export_teacher"]
    assert {"edgepack", "torch", "onnx", "onnxruntime", "numpy"} <= set(lin["libraries"])
    assert lin["teacher_id"] == tiny_build.artifact("teacher").id
    assert m["metrics"]["shipped"] == "student_int8"
    assert m["metrics"]["student_int8"]["accuracy"] > 0.5
    assert m["benchmarks"] and all(
        b["kind"] == "measured" and b["machine"]["cpu"] for b in m["benchmarks"]
    )


def test_report_and_model_card_carry_the_comparison(tiny_build):
    zf, _ = _open(tiny_build)
    report_md = zf.read("report.md").decode()
    card = zf.read("README.md").decode()
    for text in (report_md, card):
        assert "teacher_fp32" in text and "student_int8" in text and "p50" in text
    assert "edgepack_runtime.load" in card
    report = json.loads(zf.read("report.json"))
    assert report["distill"]["params"] == tiny_build.artifact("distill").meta["params"]


def test_a_non_finite_number_is_named_not_written_into_the_manifest():
    from packager.errors import StageError
    from packager.stages.package import _json

    assert _json({"a": [1.5, {"b": 2}]}, "manifest.json") == json.dumps(
        {"a": [1.5, {"b": 2}]}, indent=2
    )
    with pytest.raises(StageError, match=r"manifest.json.metrics.1.kl is not a finite number"):
        _json({"metrics": [{"kl": 0.1}, {"kl": float("nan")}]}, "manifest.json")


def _slow_quantize_meta() -> dict:
    return {"quantization": {"speed": {"warning": "static model is not faster than fp32"}}}


def test_the_speed_verdict_is_the_bench_tables_not_the_quantize_steps_own_timing():
    # main: a cached "int8 is not faster" printed beside a table that showed int8 faster.
    from packager.artifact import Artifact
    from packager.stages.package import _quantize_warnings

    rows = [
        {"variant": v, "threads": 1, "kind": "measured", "target": "host", "batch": 1,
         "latency_ms": {"p50": p50}}
        for v, p50 in (("student_fp32", 1.0), ("student_int8", 0.5))
    ]  # fmt: skip
    bench = Artifact(path=Path("."), kind="bench", id="x", meta={"results": rows, "warnings": []})
    warnings, superseded = _quantize_warnings(_slow_quantize_meta(), bench)
    assert warnings == [] and superseded == ["static model is not faster than fp32"]
    # No bench measured int8 beside fp32: the quantize step's timing is all there is.
    warnings, superseded = _quantize_warnings(_slow_quantize_meta(), None)
    assert warnings == ["static model is not faster than fp32"] and superseded == []

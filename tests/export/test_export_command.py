"""`edgepack export SOURCE -o OUT.onnx` (issue 12): a transformers folder, a python: factory
with symbolic inputs and an ExportedProgram each become one ONNX file that onnxruntime loads
and that matches torch within atol at three shapes (checked here again, independently of the
tool's own parity report). main had no `export` command at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cli_helpers import edgepack, one_error_line
from click.testing import CliRunner
from tiny_models import make_tiny_cnn, tiny_cnn_program

from packager.cli import cli
from packager.onnx_utils import io_spec, session

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]
SHAPES = [(1, 32, 32), (2, 48, 64), (3, 96, 40)]  # (batch, height, width), none traced


def _export(tmp_path: Path, *args):
    argv = ["export", *map(str, args), "--cache-dir", str(tmp_path / "cache")]
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def _matches_torch(model, out: Path, atol: float) -> None:
    sess = session(out)
    rng = np.random.default_rng(1)
    for b, h, w in SHAPES:
        x = rng.standard_normal((b, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert got.shape == ref.shape and np.abs(got - ref).max() <= atol, (b, h, w)


def test_a_python_factory_with_symbolic_inputs_exports_with_those_dynamic_axes(tmp_path):
    out = tmp_path / "cnn.onnx"
    res = _export(
        tmp_path, "python:tiny_models:make_tiny_cnn", "-o", out, "--input",
        "x:batch,3,height,width", "--dim", "height=32", "--dim", "width=32", "--opset", "13",
        "--kwarg", "width=6",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    spec = io_spec(out)
    assert spec["inputs"] == [
        {"name": "x", "dtype": "float32", "shape": ["batch", 3, "height", "width"]}
    ]
    assert spec["outputs"][0]["name"] == "output"
    assert next(o.version for o in onnx.load(str(out)).opset_import if o.domain == "") == 13
    report = json.loads((tmp_path / "cnn.export.json").read_text())
    assert [r["inputs"]["x"] for r in report["parity"]] == [
        [2, 3, 32, 32], [1, 3, 48, 48], [3, 3, 64, 64]
    ]  # fmt: skip
    assert all(r["max_abs_diff"] <= 1e-4 for r in report["parity"])
    assert "parity vs torch at 3 shapes (atol 0.0001)" in res.output
    _matches_torch(make_tiny_cnn(width=6), out, 1e-4)


def test_an_exported_program_exports_with_its_dynamic_dims(tmp_path):
    program = tiny_cnn_program(tmp_path / "cnn.pt2")
    out = tmp_path / "ep.onnx"
    res = _export(tmp_path, program, "-o", out, "--opset", "18")
    assert res.exit_code == 0, res.output
    dims = io_spec(out)["inputs"][0]["shape"]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    assert "dynamo=True" in res.output and len(json.loads(
        (tmp_path / "ep.export.json").read_text())["parity"]) == 3  # fmt: skip
    _matches_torch(make_tiny_cnn(), out, 1e-4)


def test_a_transformers_classifier_folder_exports_through_optimum_with_task_auto(
    tiny_classifier, tmp_path
):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "bert.onnx"
    res = _export(tmp_path, tiny_classifier, "-o", out)
    assert res.exit_code == 0, res.output
    assert "optimum-onnx main_export, task text-classification, opset 17" in res.output
    report = json.loads((tmp_path / "bert.export.json").read_text())
    assert report["task"] == "text-classification" and len(report["parity"]) == 3
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    sess = session(out)
    rng = np.random.default_rng(0)
    for batch, seq in ((1, 5), (2, 12), (4, 30)):
        ids = rng.integers(5, 40, (batch, seq))
        mask = np.ones_like(ids)
        mask[0, seq // 2 :] = 0
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
        wanted = {i.name for i in sess.get_inputs()}
        got = sess.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
        assert np.abs(got - ref).max() <= 1e-4


def test_a_parity_miss_exits_4_with_the_number_the_shape_and_the_tolerance(tmp_path):
    res = _export(
        tmp_path, "python:tiny_models:make_tiny_cnn", "-o", tmp_path / "m.onnx", "--input",
        "x:batch,3,height,width", "--atol", "1e-12",
    )  # fmt: skip
    assert res.exit_code == 4 and not (tmp_path / "m.onnx").exists()
    assert "max |onnx - torch| =" in res.output and "exceeds --atol 1e-12" in res.output
    assert "at inputs x [" in res.output


def test_weights_past_the_protobuf_limit_go_to_one_external_data_file(tmp_path, monkeypatch):
    from packager.export import external

    monkeypatch.setattr(external, "EXTERNAL_DATA_BYTES", 256)  # a 2 GiB model, in miniature
    out = tmp_path / "out" / "big.onnx"
    res = _export(
        tmp_path, "python:tiny_models:make_tiny_cnn", "-o", out, "--input", "x:batch,3,16,16",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "big.export.json", "big.onnx", "big.onnx.data"
    ]  # fmt: skip
    locations = {
        e.value
        for t in onnx.load(str(out), load_external_data=False).graph.initializer
        for e in t.external_data
        if e.key == "location"
    }
    assert locations == {"big.onnx.data"}
    x = np.zeros((2, 3, 16, 16), np.float32)
    with torch.no_grad():
        ref = make_tiny_cnn()(torch.from_numpy(x)).numpy()
    assert np.abs(session(out).run(None, {"x": x})[0] - ref).max() < 1e-4
    # and the rest of edgepack takes it: bench copies the data file into the cache with it
    bench = CliRunner().invoke(
        cli, ["bench", str(out), "--runs", "2", "--cache-dir", str(tmp_path / "cache")]
    )
    assert bench.exit_code == 0, bench.output


def test_integer_inputs_are_checked_on_real_feeds_or_refused_by_name(user_models, tmp_path):
    args = ["python:tiny_models:LengthsEncoder", "-o", tmp_path / "l.onnx",
            "--input", "features:batch,time,8", "--input", "lengths:batch:int64"]  # fmt: skip
    refused = edgepack(
        "export", *args, "--cache-dir", tmp_path / "c", cwd=Path(__file__).parents[1]
    )
    line = one_error_line(refused)
    assert "lengths (int64) cannot be generated honestly" in line and "--feeds" in line
    res = _export(tmp_path, *args, "--feeds", user_models["lengths_feeds"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "l.export.json").read_text())
    assert report["parity"] == [
        {"inputs": {"features": [6, 10, 8], "lengths": [6]}, "max_abs_diff": pytest.approx(0, abs=1e-4)}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["python:tiny_models:make_tiny_cnn"], "a python: factory needs its inputs"),
        (["python:tiny_models:nope", "--input", "x:b,3"], "has no callable 'nope'"),
        (["python:tiny_models:make_tiny_cnn", "--input", "x"], "expected NAME:SHAPE[:DTYPE]"),
        (["python:tiny_models:make_tiny_cnn", "--input", "x:b,3:int3"], "dtype"),
        (["no-such-folder"], "no-such-folder: not found"),
        (["model.onnx"], "already ONNX"),
    ],
)
def test_bad_sources_and_inputs_are_one_error_line(tmp_path, args, message):
    proc = edgepack("export", *args, "-o", tmp_path / "o.onnx", "--cache-dir", tmp_path / "c",
                    cwd=Path(__file__).parents[1])  # fmt: skip
    assert message in one_error_line(proc)
    assert not (tmp_path / "o.onnx").exists()

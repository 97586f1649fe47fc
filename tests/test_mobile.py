"""package.mobile (packager/mobile.py): model.ort, required_operators.config, the NNAPI/CoreML
usability check in the manifest, fixed shapes for mobile EPs, and .ort == .onnx on the samples."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from packager.errors import CheckFailed, StageError
from packager.mobile import write_mobile_artifacts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tiny_mobile_build, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mobile-pkg")
    with zipfile.ZipFile(tiny_mobile_build.package_path) as zf:
        zf.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def manifest(tree) -> dict:
    return json.loads((tree / "manifest.json").read_text())


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if path.suffix == ".ort":
        options.add_session_config_entry("session.load_model_format", "ORT")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_mobile_files_are_written_and_listed_with_their_hashes(tree, manifest):
    mobile = manifest["mobile"]
    assert (mobile["model"], mobile["required_operators"]) == (
        "model.ort",
        "required_operators.config",
    )
    for name in ("model.ort", "required_operators.config"):
        data = (tree / name).read_bytes()
        assert manifest["files"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
    assert mobile["onnxruntime"] == ort.__version__


def test_required_operators_config_lists_the_ort_models_ops_and_no_build_paths(tree):
    config = (tree / "required_operators.config").read_text()
    ops = {
        op
        for line in config.splitlines()
        if line and not line.startswith("#")
        for op in line.split(";")[2].split(",")
    }
    # the int8 model's ops: its input quantized, and (outputs kept float) a last QGemm that
    # returns float logits itself, so no DequantizeLinear is left to list
    assert {"QuantizeLinear", "QGemm"} <= ops and "DequantizeLinear" not in ops
    assert "/tmp" not in config and ".edgepack" not in config
    assert "# - model.ort" in config


def test_usability_check_is_recorded_for_nnapi_and_coreml(manifest):
    usability = manifest["mobile"]["usability"]
    assert set(usability) == {"NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"}
    for entry in usability.values():
        assert entry["suitability"] in {"YES", "MAYBE", "NO"}
        assert 0 <= entry["supported_nodes"] <= entry["nodes"] and entry["nodes"] > 0
        if entry["supported_nodes"] < entry["nodes"]:
            assert entry["unsupported_ops"]  # a gap is explained by op names
    # Shapes were fixed, so nothing is left to gain from fixing them.
    assert all("with_fixed_shapes" not in e for e in usability.values())


def test_fixed_shapes_apply_to_the_ort_model_only(tree, manifest):
    assert manifest["mobile"]["fixed_shapes"] == {"input": [1, 1, 8, 8]}
    assert _session(tree / "model.ort").get_inputs()[0].shape == [1, 1, 8, 8]
    assert _session(tree / "model.onnx").get_inputs()[0].shape[0] == "batch"


def test_the_ort_model_gives_the_same_outputs_as_the_onnx_model(tree, manifest):
    x = np.load(tree / manifest["samples"]["inputs"]["input"])
    onnx_out = _session(tree / "model.onnx").run(None, {"input": x})[0]
    ort_session = _session(tree / "model.ort")
    ort_out = np.concatenate([ort_session.run(None, {"input": row[None]})[0] for row in x])
    np.testing.assert_allclose(
        ort_out, onnx_out, atol=manifest["samples"]["atol"], rtol=manifest["samples"]["rtol"]
    )
    assert (ort_out.argmax(1) == onnx_out.argmax(1)).all()


def _fresh_tree(tree: Path, dest: Path) -> Path:
    """The package's model and samples, without the mobile files, to rerun the stage's step."""
    for name in ("model.onnx", "samples/input.npy", "samples/logits.npy"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes((tree / name).read_bytes())
    return dest


def test_dynamic_shapes_record_what_fixing_them_would_give(tree, manifest, tmp_path):
    out = _fresh_tree(tree, tmp_path / "tree")
    block = write_mobile_artifacts(out / "model.onnx", out, manifest["samples"], None)
    assert block["fixed_shapes"] is None
    assert all("with_fixed_shapes" in e for e in block["usability"].values())
    assert _session(out / "model.ort").get_inputs()[0].shape[0] == "batch"


@pytest.mark.parametrize(
    ("fix", "message"),
    [
        ({"pixels": [1, 1, 8, 8]}, r"'pixels' is not a model input \(inputs: \['input'\]\)"),
        ({"input": [1, 64]}, r"fix_shapes\.input = \[1, 64\]: Rank mismatch"),
    ],
)
def test_bad_fix_shapes_fail_the_stage_with_one_clear_line(tree, manifest, tmp_path, fix, message):
    out = _fresh_tree(tree, tmp_path / "tree")
    with pytest.raises(StageError, match=message):
        write_mobile_artifacts(out / "model.onnx", out, manifest["samples"], fix)


def test_an_ort_model_that_disagrees_with_the_samples_fails_the_stage(tree, manifest, tmp_path):
    out = _fresh_tree(tree, tmp_path / "tree")
    logits = np.load(out / "samples/logits.npy")
    np.save(out / "samples/logits.npy", logits + 1.0)  # recorded outputs the .ort cannot match
    with pytest.raises(CheckFailed, match=r"model\.ort output 'logits' differs from model\.onnx"):
        write_mobile_artifacts(out / "model.onnx", out, manifest["samples"], None)

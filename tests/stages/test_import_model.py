"""import_model stage: a user's ONNX file enters the cache keyed by its content, checked."""

from __future__ import annotations

import shutil

import pytest
from tiny_models import outlier_mlp_onnx

from packager.errors import InputFileError
from packager.pipeline import run
from packager.plans import model_step
from packager.progress import SilentReporter


def _run(path, cache):
    return run([model_step("model", path)], cache_dir=cache, reporter=SilentReporter())


def test_a_model_file_is_copied_with_its_io_and_keyed_by_content(tmp_path):
    model = outlier_mlp_onnx(tmp_path / "m.onnx")
    first = _run(model, tmp_path / "c")
    art = first.artifact("model")
    assert art.file().read_bytes() == model.read_bytes()
    assert art.meta["source"] == str(model.resolve())
    assert [i["name"] for i in art.meta["inputs"]] and art.meta["outputs"]
    assert _run(model, tmp_path / "c").steps[0].status == "cached"
    outlier_mlp_onnx(tmp_path / "other.onnx", seed=1)
    shutil.copyfile(tmp_path / "other.onnx", model)  # same path, other content: a new key
    again = _run(model, tmp_path / "c")
    assert again.steps[0].status == "done" and again.artifact("model").id != art.id


def test_an_invalid_onnx_file_is_named_by_the_users_path(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x01not a model")
    with pytest.raises(InputFileError, match=rf"^{bad}: not a valid ONNX model") as err:
        _run(bad, tmp_path / "c")
    assert ".edgepack" not in str(err.value) and str(tmp_path / "c") not in str(err.value)


def test_a_missing_or_foreign_file_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        model_step("model", tmp_path / "nope.onnx")
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(InputFileError, match=r"expected an \.onnx model or an \.edgepack package"):
        model_step("model", tmp_path / "w.bin")

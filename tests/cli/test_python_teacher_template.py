"""models/python-teacher.yaml, the template for distilling your own PyTorch model, builds as its
comments say: train models/my_teacher.py's teacher, then `edgepack build` the recipe (here with
the weights in a temporary folder and fewer epochs, so it takes seconds)."""

from __future__ import annotations

import importlib.util
import zipfile

import pytest
from click.testing import CliRunner

from packager.cli import cli
from packager.recipe import REPO_MODELS


@pytest.mark.slow
def test_the_python_teacher_template_trains_and_builds(tmp_path):
    spec = importlib.util.spec_from_file_location("my_teacher", REPO_MODELS / "my_teacher.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = tmp_path / "my_teacher.safetensors"
    assert module.train(weights, hidden=32, epochs=8) > 0.85
    res = CliRunner().invoke(
        cli,
        ["build", str(REPO_MODELS / "python-teacher.yaml"), "--cache-dir", str(tmp_path / "c"),
         "--set", f"teacher.weights={weights}", "--set", "teacher.kwargs.hidden=32",
         "--set", "distill.epochs=4", "--set", "bench.runs=5",
         "--set", f"package.out_dir={tmp_path / 'dist'}", "--set", "evaluate.min_accuracy=0.5",
         "--set", "evaluate.max_drop=0.2"],
        catch_exceptions=False,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "teacher_fp32" in res.output and "student_int8" in res.output
    manifest = zipfile.ZipFile(tmp_path / "dist" / "my-model.edgepack").read("manifest.json")
    assert b"python:my_teacher:make_teacher" in manifest
    assert (tmp_path / "dist" / "my-model.report.html").is_file()

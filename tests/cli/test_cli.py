"""The CLI end to end on the tiny digits recipe: build, cache, verify, tamper, inspect, run."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from tiny_models import tiny_recipe_dict

from packager.cli import cli


def test_help_is_instant_and_imports_no_torch():
    code = (
        "import sys; from packager.cli import cli; sys.argv=['edgepack','--help']\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch','onnx','onnxruntime','transformers') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "build" in out.stdout and "verify" in out.stdout


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One CLI build of the tiny recipe into its own cache and dist folder."""
    root = tmp_path_factory.mktemp("cli")
    recipe = root / "tiny.yaml"
    recipe.write_text(
        "# a tiny digits recipe for the CLI tests\n"
        + yaml.safe_dump(tiny_recipe_dict(package={"out_dir": str(root / "dist")}))
    )
    cache = str(root / "cache")
    first = _invoke("build", str(recipe), "--cache-dir", cache)
    return root, recipe, cache, first


@pytest.mark.slow
def test_build_prints_comparison_table_and_package_path(built):
    root, _, _, first = built
    assert first.exit_code == 0, first.output
    for text in (
        "teacher_fp32",
        "student_fp32",
        "student_int8",
        "accuracy",
        "p50 ms",
        "peak RSS MB",
    ):
        assert text in first.output
    assert f"package: {root / 'dist' / 'digits-tiny.edgepack'}" in first.output
    assert (root / "dist" / "digits-tiny.edgepack").is_file()


@pytest.mark.slow
@pytest.mark.slow
def test_build_says_each_warning_once_after_the_table(built):
    _, _, _, first = built
    lines = first.output.splitlines()
    warned = [line for line in lines if line.startswith("warning:")]
    assert len(warned) == len(set(warned))
    table_end = max(i for i, line in enumerate(lines) if line.startswith("└"))
    assert all(lines.index(w) > table_end for w in warned)


def test_unchanged_rebuild_runs_nothing_and_bench_change_reruns_bench_and_package(built):
    _, recipe, cache, _ = built
    again = _invoke("build", str(recipe), "--cache-dir", cache)
    assert "ran: nothing (all cached)" in again.output
    plan = _invoke("build", str(recipe), "--cache-dir", cache, "--set", "bench.runs=7", "--dry-run")
    assert "2 of 10 steps would run" in plan.output
    changed = _invoke("build", str(recipe), "--cache-dir", cache, "--set", "bench.runs=7")
    assert "ran: bench, package in" in changed.output


@pytest.mark.slow
def test_verify_passes_then_fails_on_one_changed_byte(built, tmp_path):
    root = built[0]
    pkg = root / "dist" / "digits-tiny.edgepack"
    ok = _invoke("verify", str(pkg))
    assert ok.exit_code == 0 and ok.output.startswith("python: ok: ")
    bad = tmp_path / "bad.edgepack"
    with zipfile.ZipFile(pkg) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = bytearray(src.read(item))
            if item.filename == "model.onnx":
                data[len(data) // 2] ^= 0x01
            dst.writestr(item, bytes(data))
    out = subprocess.run(
        [sys.executable, "-m", "packager.cli", "verify", str(bad)], capture_output=True, text=True
    )
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "model.onnx: sha256 mismatch" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_run_predicts_labels_from_raw_inputs(built, tmp_path):
    pkg = built[0] / "dist" / "digits-tiny.edgepack"
    from sklearn.datasets import load_digits

    d = load_digits()
    np.save(tmp_path / "x.npy", d.data[:3].astype(np.float32))
    res = _invoke("run", str(pkg), "--input", str(tmp_path / "x.npy"))
    assert res.exit_code == 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("0: ")


@pytest.mark.slow
def test_inspect_shows_io_ops_params_and_metrics(built):
    root = built[0]
    res = _invoke("inspect", str(root / "dist" / "digits-tiny.edgepack"))
    assert "input  input: float32" in res.output and "QuantizeLinear" in res.output
    assert "student_int8  accuracy" in res.output
    js = json.loads(
        _invoke("inspect", "--json", str(root / "dist" / "digits-tiny.edgepack")).output
    )
    assert js["params"] > 0 and js["metrics"]["shipped"] == "student_int8"


def test_bad_recipe_exits_2_with_one_line(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("# bad\nquantize: {mode: int3}\n")
    out = subprocess.run(
        [sys.executable, "-m", "packager.cli", "build", str(p)], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip().count("\n") == 0
        and "quantize.mode" in out.stderr
        and "int3" in out.stderr
    )


@pytest.mark.parametrize(
    "cmd",
    [
        ["verify", "nope.edgepack"],
        ["inspect", "nope.onnx"],
        ["run", "nope.edgepack", "--input", "x.npy"],
    ],
)
def test_missing_files_are_one_line_errors(tmp_path, cmd):
    out = subprocess.run(
        [sys.executable, "-m", "packager.cli", *cmd], capture_output=True, text=True, cwd=tmp_path
    )
    assert (
        out.returncode != 0 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    )


def test_recipes_lists_the_default_with_its_purpose():
    res = _invoke("recipes")
    assert "digits.yaml" in res.output and "embedded default" in res.output


def test_default_recipe_resolves_outside_the_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _invoke("build", "--dry-run", "--cache-dir", str(tmp_path / "c"))
    assert res.exit_code == 0 and "10 of 10 steps would run" in res.output
    assert not Path("dist").exists()


@pytest.mark.slow
def test_run_with_a_wrongly_sized_input_is_a_usage_error(built, tmp_path):
    pkg = built[0] / "dist" / "digits-tiny.edgepack"
    np.save(tmp_path / "x.npy", np.zeros((3, 63), np.float32))
    out = subprocess.run(
        [sys.executable, "-m", "packager.cli", "run", str(pkg), "--input", str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1


def test_a_device_that_is_not_here_is_one_line_and_exit_2_before_any_work(tmp_path):
    import torch

    missing = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    cache = tmp_path / "cache"
    for flags in (["--device", missing], ["--set", f"distill.device={missing}"]):
        out = subprocess.run(
            [sys.executable, "-m", "packager.cli", "build", *flags, "--cache-dir", str(cache)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(f"error: distill.device = {missing}: ")
        assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert not cache.exists() or not any(cache.iterdir())  # no step ran, not even provenance


def test_device_precision_and_nproc_flags_are_their_distill_fields(tmp_path):
    res = _invoke(
        "build",
        "--device",
        "cpu",
        "--precision",
        "fp16",
        "--nproc",
        "2",
        "--dry-run",
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert res.exit_code == 0, res.output
    from packager.plans import build_plan
    from packager.recipe import load_recipe

    recipe = load_recipe(None, ("distill.device=cpu", "distill.precision=fp16", "distill.nproc=2"))
    distill = next(s for s in build_plan(recipe) if s.name == "distill").config
    assert (distill.compute.device, distill.compute.precision, distill.nproc) == ("cpu", "fp16", 2)
    bad = _invoke("build", "--precision", "fp8", "--dry-run")
    assert bad.exit_code == 2 and "fp8" in bad.output


def test_recipes_lists_each_recipes_profiles_and_a_profile_applies(tmp_path):
    res = _invoke("recipes")
    assert "profiles (--profile): gpu, tiny" in res.output  # minilm-l6.yaml
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "packager.cli",
            "build",
            "models/minilm-l6.yaml",
            "--profile",
            "gpu",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    if not __import__("torch").cuda.is_available():  # the profile asks for a GPU
        assert out.returncode == 2 and "distill.device = cuda" in out.stderr
    nope = _invoke("build", "models/minilm-l6.yaml", "--profile", "nope", "--dry-run")
    assert nope.exit_code == 2 and "no profile 'nope' (its profiles: gpu, tiny)" in nope.output

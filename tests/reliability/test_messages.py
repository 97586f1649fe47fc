"""One clear line for every failure: bad data, bad values, hostile recipes and inputs, damaged
packages, each named in the user's terms, with a non-zero exit and no traceback."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np
import pytest
import yaml
from cli_helpers import edgepack, one_error_line
from tiny_models import tiny_recipe, tiny_recipe_dict

from packager.errors import InputFileError, RecipeError
from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def _data(tmp_path, x, y, **data):
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    recipe = tiny_recipe(
        data={"source": str(tmp_path / "x.npy"), "labels_file": str(tmp_path / "y.npy"), **data}
    )
    steps = [s for s in build_plan(recipe) if s.name == "data"]
    return run(steps, cache_dir=tmp_path / "c", reporter=SilentReporter())


def _digits(n=200):
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[:n].astype(np.float32), d.target[:n].copy()


def test_nan_in_the_data_is_said_as_such_with_its_rows(tmp_path):
    x, y = _digits()
    x[[3, 17], 5] = np.nan
    with pytest.raises(InputFileError, match=r"2 example\(s\) hold NaN or inf \(rows 3, 17\)"):
        _data(tmp_path, x, y, limit=None)


def test_negative_labels_are_named_not_an_index_error(tmp_path):
    x, y = _digits()
    y[9] = -1
    with pytest.raises(InputFileError, match=r"class indices >= 0; row 9 have negative labels"):
        _data(tmp_path, x, y, limit=None)


def test_fractional_labels_are_refused(tmp_path):
    x, y = _digits()
    with pytest.raises(InputFileError, match="labels must be class indices"):
        _data(tmp_path, x, y.astype(np.float32) + 0.5, limit=None)


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_rows_are_said_in_data_terms(tmp_path, n):
    x, y = _digits(n)
    with pytest.raises(InputFileError, match=rf"{n} example\(s\) cannot make train, validation"):
        _data(tmp_path, x, y, limit=None)


def _npz(tmp_path, **arrays):
    np.savez(tmp_path / "d.npz", **arrays)
    return tmp_path / "d.npz"


def _bad_npz(tmp_path, case):
    """Arrays a user might hand over that no model can be trained from."""
    x, y = _digits()
    splits = ("train", "val", "test")
    if case == "empty":
        return _npz(tmp_path, x=x[:0], y=y[:0])
    if case == "scalar":
        return _npz(tmp_path, x=np.float32(3), y=np.int64(1))
    if case == "flat":
        return _npz(tmp_path, x=x[:, 0], y=y)
    if case == "one-hot":
        return _npz(tmp_path, x=x, y=np.eye(10, dtype=np.int64)[y])
    if case == "truncated":
        path = _npz(tmp_path, x=x, y=y)
        path.write_bytes(path.read_bytes()[:3000])
        return path
    if case == "empty-split":
        return _npz(
            tmp_path,
            **{f"x_{s}": x[:0] if s == "test" else x for s in splits},
            **{f"y_{s}": y[:0] if s == "test" else y for s in splits},
        )
    if case == "short-labels":
        return _npz(tmp_path, **{f"x_{s}": x for s in splits}, **{f"y_{s}": y[:9] for s in splits})
    arrays = {f"x_{s}": x for s in splits} | {f"y_{s}": y for s in splits}
    return _npz(tmp_path, **(arrays | {"x_val": x[:, :32]}))


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("empty", r"non-empty array of examples .*got shape \(0, 64\)"),
        ("scalar", r"non-empty array of examples .*got shape \(\)"),
        ("flat", r"got shape \(200,\); one feature per example is shape \(N, 1\)"),
        ("one-hot", r"1-D array of class indices, got shape \(200, 10\); one-hot"),
        ("truncated", r"cannot read \(not a complete zip archive"),
        ("empty-split", r"\(test split\): inputs must be a non-empty array"),
        ("short-labels", r"\(train split\): 200 inputs but 9 labels"),
        ("split-shapes", r"splits' examples differ in shape \(train \(64,\), val \(32,\)"),
    ],
)
def test_data_no_model_can_learn_from_is_said_in_data_terms(tmp_path, case, said):
    recipe = tiny_recipe(data={"source": str(_bad_npz(tmp_path, case))})
    steps = [s for s in build_plan(recipe) if s.name == "data"]
    with pytest.raises(InputFileError, match=said):
        run(steps, cache_dir=tmp_path / "c", reporter=SilentReporter())


def test_a_truncated_npz_is_exit_2_in_one_line_not_a_stage_crash(tmp_path):
    recipe = tmp_path / "r.yaml"
    data = {"source": str(_bad_npz(tmp_path, "truncated"))}
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict(data=data)))
    proc = edgepack("build", recipe, "--cache-dir", tmp_path / "c", timeout=120)
    assert proc.returncode == 2 and "not a complete zip archive" in one_error_line(proc)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_inf_are_not_a_tolerance(value):
    from packager.recipe import apply_overrides, build_recipe

    data = apply_overrides(tiny_recipe_dict(), [f"evaluate.max_drop={value}"])
    with pytest.raises(RecipeError, match=r"evaluate\.max_drop = .* finite number") as err:
        build_recipe(data, "r.yaml")
    assert "<= 1" not in str(err.value)


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    return "\n".join(lines)


def test_a_yaml_alias_bomb_in_set_is_refused_at_once(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("# tiny\n" + yaml.safe_dump(tiny_recipe_dict()))
    bomb = "{" + _bomb().replace("\n", ", ") + "}"
    proc = edgepack("build", recipe, "--set", f"description={bomb}", "--dry-run", timeout=30)
    line = one_error_line(proc)
    assert "aliases" in line and proc.returncode == 2


def test_a_yaml_alias_bomb_in_a_recipe_file_is_refused_at_once(tmp_path):
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text("# a bomb\n" + _bomb() + "\nname: x\n")
    proc = edgepack("build", recipe, "--dry-run", timeout=30)
    line = one_error_line(proc)
    assert f"recipe {recipe}: line" in line and "aliases" in line and proc.returncode == 2


def test_run_with_deeply_nested_json_is_one_line(tiny_build, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    line = one_error_line(edgepack("run", tiny_build.package_path, "--input", deep))
    assert "nested too deeply" in line


def test_run_refuses_non_finite_inputs(tiny_build, tmp_path):
    x = np.zeros((1, 64), np.float32)
    x[0, 3] = np.nan
    np.save(tmp_path / "nan.npy", x)
    proc = edgepack("run", tiny_build.package_path, "--input", tmp_path / "nan.npy")
    assert "NaN or infinity" in one_error_line(proc) and proc.returncode == 2


def test_run_refuses_a_fifo_or_a_folder_as_input_at_once(tiny_build, tmp_path):
    os.mkfifo(tmp_path / "in.npy")
    for flag, path in (("--input", tmp_path / "in.npy"), ("--image", tmp_path)):
        proc = edgepack("run", tiny_build.package_path, flag, path, timeout=60)
        assert proc.returncode == 2 and "not a regular file" in one_error_line(proc)


def _repack(src, dest, manifest_edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "manifest.json":
                data = json.dumps(manifest_edit(json.loads(data))).encode()
            zout.writestr(info, data)
    return dest


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: [m], "expected a JSON object"),
        (lambda m: {**m, "metrics": "high"}, "metrics"),
        (
            lambda m: {**m, "files": {**m["files"], "../secret.onnx": m["files"]["model.onnx"]}},
            "unsafe",
        ),
    ],
)
def test_every_reader_refuses_a_malformed_manifest_in_one_line_with_exit_5(
    tiny_build, tmp_path, edit, message
):
    bad = _repack(tiny_build.package_path, tmp_path / "bad.edgepack", edit)
    for args in (
        ["inspect", bad],
        ["bench", bad, "--runs", "1", "--cache-dir", tmp_path / "c"],
        ["verify", bad],
        ["run", bad, "--text", "x"],
    ):
        proc = edgepack(*args)
        line = one_error_line(proc)
        assert message in line and (args[0] == "run" or str(bad) in line), line
        assert proc.returncode == 5, (args[0], line)  # README: a refused package is 5


def test_inspect_does_not_follow_a_member_out_of_a_folder_package(tiny_build, tmp_path):
    pkg = tmp_path / "pkg"
    with zipfile.ZipFile(tiny_build.package_path) as zf:
        zf.extractall(pkg)
    (tmp_path / "secret.onnx").write_bytes((pkg / "model.onnx").read_bytes())
    m = json.loads((pkg / "manifest.json").read_text())
    m["model"] = "../secret.onnx"
    (pkg / "manifest.json").write_text(json.dumps(m))
    proc = edgepack("inspect", pkg)
    line = one_error_line(proc)
    assert "secret" in line and str(pkg) in line and proc.returncode == 5


def test_a_package_whose_model_is_not_onnx_is_refused_with_exit_5_everywhere(tiny_build, tmp_path):
    """Its size and sha256 match the manifest (rewritten to), but model.onnx is no ONNX model:
    inspect printed a traceback and bench called it a failed stage (3)."""
    pkg = tmp_path / "pkg"
    with zipfile.ZipFile(tiny_build.package_path) as zf:
        zf.extractall(pkg)
    junk = b"not an onnx model"
    (pkg / "model.onnx").write_bytes(junk)
    m = json.loads((pkg / "manifest.json").read_text())
    m["files"]["model.onnx"].update(sha256=hashlib.sha256(junk).hexdigest(), size=len(junk))
    (pkg / "manifest.json").write_text(json.dumps(m))
    for args in (
        ["inspect", pkg],
        ["bench", pkg, "--runs", "1", "--cache-dir", tmp_path / "c"],
        ["verify", pkg],
        ["run", pkg, "--input", pkg / "samples/raw.npy"],
    ):
        proc = edgepack(*args)
        line = one_error_line(proc)
        assert "model.onnx" in line and proc.returncode == 5, (args[0], proc.returncode, line)


def test_a_missing_file_is_one_line_everywhere(tmp_path):
    for args in (
        ["inspect", tmp_path / "nope.edgepack"],
        ["verify", tmp_path / "nope.edgepack"],
        ["bench", tmp_path / "nope.onnx"],
        ["quantize", tmp_path / "nope.onnx", "-o", tmp_path / "q.onnx"],
        ["build", tmp_path / "nope.yaml"],
    ):
        assert "not found" in one_error_line(edgepack(*args)) or "no such" in one_error_line(
            edgepack(*args)
        )


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_inspect_and_verify_of_a_folder_with_a_fifo_or_dev_zero_answer_at_once(
    tiny_build, tmp_path, kind
):
    import os

    pkg = tmp_path / "pkg"
    with zipfile.ZipFile(tiny_build.package_path) as zf:
        zf.extractall(pkg)
    (pkg / "report.md").unlink()
    if kind == "fifo":
        os.mkfifo(pkg / "report.md")
    else:
        (pkg / "report.md").symlink_to("/dev/zero")
    for args in (
        ["inspect", pkg],
        ["verify", pkg],
        ["run", pkg, "--input", pkg / "samples/raw.npy"],
    ):
        proc = edgepack(*args, timeout=60)  # a hang would time out
        line = one_error_line(proc)
        assert "report.md" in line and proc.returncode == 5, (proc.returncode, line)


@pytest.mark.parametrize(
    "args, said",
    [
        (["build", "--nosuch"], "No such option '--nosuch'"),
        (["biuld"], "No such command 'biuld'"),
        (["quantize", "m.onnx", "--mode", "bogus"], "Invalid value for '--mode'"),
        (["auto", "models/digits.yaml", "--latency-ms", "1"], "Missing option '--target'"),
    ],
)
def test_a_mistyped_command_line_is_one_error_line_naming_its_help(args, said):
    proc = edgepack(*args)
    line = one_error_line(proc)
    assert proc.returncode == 2
    assert said in line and "--help`" in line
    assert "Usage:" not in proc.stderr

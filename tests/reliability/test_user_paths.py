"""Every path a user names is checked the same way (docs/guarantees.md), by the runtime's one
helper (edgepack_runtime.check_regular / read_regular; packager.edge_runtime.user_file in the
packager): a regular file or a link to one, within its kind's size cap, checked before it is
opened. A FIFO (which would block forever), a device (which streams without end), a folder, a
file over the cap or a name the system cannot hold is one `error:` line, at once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import edgepack, one_error_line
from runtime_drivers import CHECK_JS, need_js
from runtime_drivers import one_error_line as runtime_error_line
from runtimes.conftest import build_digits_package
from tiny_models import outlier_mlp_onnx

QUICK = 60  # seconds: a refusal is immediate; a hang fails the test instead of the suite


def _special(kind: str, path: Path) -> Path:
    if kind == "fifo":
        os.mkfifo(path)  # no writer: opening it to read would wait forever
    elif kind == "device":
        path.symlink_to("/dev/zero")  # reads without end
    else:
        path.mkdir()
    return path


WHY = {"fifo": "not a regular file (a FIFO)", "device": "not a regular file (a device)",
       "folder": "not a regular file (a folder)"}  # fmt: skip


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return build_digits_package().write(tmp_path_factory.mktemp("pkg") / "digits", as_zip=True)


@pytest.mark.parametrize("kind", ["fifo", "device"])  # a folder: click's own one line
def test_verify_pubkey_that_is_not_a_file_is_one_line_not_a_hang(kind, digits, tmp_path):
    key = _special(kind, tmp_path / "key.pub")
    line = one_error_line(edgepack("verify", digits, "--pubkey", key, timeout=QUICK))
    assert f"--pubkey {key}: {WHY[kind]}" in line, line


def test_verify_pubkey_over_64_kib_is_refused_unread(digits, tmp_path):
    key = tmp_path / "huge.pem"
    with open(key, "wb") as f:
        f.truncate(1 << 30)  # a gigabyte (sparse): never read
    line = one_error_line(edgepack("verify", digits, "--pubkey", key, timeout=QUICK))
    assert "too large (1073741824 bytes, over 65536)" in line, line


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_quantize_a_model_that_is_not_a_file_says_so(kind, tmp_path):
    model = _special(kind, tmp_path / "model.onnx")
    proc = edgepack("quantize", model, "-o", tmp_path / "q.onnx", "--cache-dir", tmp_path / "c",
                    timeout=QUICK)  # fmt: skip
    line = one_error_line(proc)
    assert proc.returncode == 2 and f"{model}: {WHY[kind]}" in line, line
    assert "file not found" not in line


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_build_a_recipe_that_is_not_a_file_is_one_line(kind, tmp_path):
    recipe = _special(kind, tmp_path / "r.yaml")
    proc = edgepack("build", recipe, "--dry-run", "--cache-dir", tmp_path / "c", timeout=QUICK)
    assert f"recipe {recipe}: {WHY[kind]}" in one_error_line(proc)


def test_build_a_recipe_over_1_mib_is_refused_unread(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: big\n# " + "x" * (1 << 20) + "\n")
    proc = edgepack("build", recipe, "--dry-run", "--cache-dir", tmp_path / "c", timeout=QUICK)
    assert "too large" in one_error_line(proc) and proc.returncode == 2


def test_a_recipe_whose_data_source_is_a_fifo_is_one_line(tmp_path):
    """The provenance step does not hash it and the data step refuses it: no read blocks."""
    import yaml
    from tiny_models import tiny_recipe_dict

    fifo = _special("fifo", tmp_path / "x.npy")
    np.save(tmp_path / "y.npy", np.zeros(100, np.int64))
    recipe = tiny_recipe_dict(data={"source": "x.npy", "labels_file": "y.npy"})
    recipe["data"].pop("limit")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    proc = edgepack("build", tmp_path / "r.yaml", "--cache-dir", tmp_path / "c", timeout=120)
    assert f"data.source {fifo}: not a regular file (a FIFO)" in one_error_line(proc)


@pytest.mark.parametrize("flag", ["--input", "--image"])
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_edgepack_run_refuses_an_input_that_is_not_a_file(flag, kind, digits, tmp_path):
    path = _special(kind, tmp_path / ("x.npy" if flag == "--input" else "x.png"))
    proc = edgepack("run", digits, flag, path, timeout=QUICK)
    assert f"{flag} {path}: {WHY[kind]}" in one_error_line(proc) and proc.returncode == 2


def test_bench_feeds_that_are_a_fifo_are_one_line(tmp_path):
    model = outlier_mlp_onnx(tmp_path / "m.onnx")
    feeds = _special("fifo", tmp_path / "f.npz")
    proc = edgepack("bench", model, "--feeds", feeds, "--runs", 1, timeout=QUICK)
    assert f"--feeds {feeds}: not a regular file (a FIFO)" in one_error_line(proc)


def test_a_path_longer_than_the_system_allows_is_one_line(digits, tmp_path):
    long = tmp_path / ("d" * 300) / "x.npy"
    line = one_error_line(edgepack("run", digits, "--input", long, timeout=QUICK))
    assert "--input" in line and "File name too long" in line, line


# The three runtimes' own CLIs: the same check, with each kind's cap.

RUNTIMES = ["python", "js", pytest.param("cpp", marks=pytest.mark.slow)]


def _argv(runtime: str, pkg: Path, flag: str, path: Path, request) -> list[str]:
    if runtime == "python":
        return [sys.executable, "-m", "edgepack_runtime", str(pkg), flag, str(path)]
    if runtime == "js":
        return [need_js(), str(CHECK_JS), str(pkg), flag, str(path)]
    cpp_bin: Path = request.getfixturevalue("cpp_bin")
    if flag == "--input":
        return [str(cpp_bin / "predict"), str(pkg), str(path)]
    return [str(cpp_bin / "edgepack_check"), str(pkg), flag, str(path)]


@pytest.mark.parametrize(
    ("flag", "size", "cap"),
    [("--input", 3 << 30, 2 << 30), ("--image", 300 << 20, 256 << 20)],
    ids=["input over 2 GiB", "image over 256 MiB"],
)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_file_over_its_cap_is_refused_from_its_size(runtime, flag, size, cap, request, tmp_path):
    """A sparse file: costs nothing to make, and a runtime that read it would take seconds and
    gigabytes before failing."""
    from tiny_images import build_image_package, sample_images

    if flag == "--image":
        pkg = build_image_package(tmp_path / "pkg", sample_images(tmp_path / "images")[:1])
    else:
        pkg = build_digits_package().write(tmp_path / "pkg", as_zip=False)
    path = tmp_path / ("big.npy" if flag == "--input" else "big.png")
    with open(path, "wb") as f:
        f.truncate(size)
    message = runtime_error_line(_argv(runtime, pkg, flag, path, request), timeout=QUICK)
    assert str(path) in message and f"too large ({size} bytes, over {cap})" in message, message

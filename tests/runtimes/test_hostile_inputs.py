"""The promise for what a user hands a runtime besides the package: an input .npy, an image file,
a public key. Every runtime refuses, with one `error:` line and exit code 1 (its CLI's code for
any refusal):

- a path that is not a regular file (a FIFO, a folder, a device), before opening it: opening a
  FIFO that has no writer blocks forever, and a device can stream without end;
- a complex .npy input: cast to the model's floats it would lose its imaginary part.

Driven as in test_malformed_packages.py (tests/runtime_drivers.py); a regression fails on the
child's timeout instead of hanging the suite.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import edgepack_runtime as ep
import numpy as np
import pytest
from runtime_drivers import CHECK_JS, need_js, one_error_line
from tiny_images import build_image_package, sample_images

RUNTIMES = ["python", "js", pytest.param("cpp", marks=pytest.mark.slow)]
_SUFFIX = {"input": ".npy", "image": ".png", "pubkey": ".pem"}  # the C++ example picks by suffix


@pytest.fixture(scope="module")
def image_package(tmp_path_factory) -> Path:
    """An image package folder: only an image package opens an --image path."""
    images = sample_images(tmp_path_factory.mktemp("images"))[:1]
    return build_image_package(tmp_path_factory.mktemp("pkg") / "tiny-image", images)


def _not_a_file(kind: str, path: Path) -> Path:
    if kind == "fifo":
        os.mkfifo(path)  # no writer: open() without O_NONBLOCK waits for one forever
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(os.devnull)  # a character device, under the name the CLI expects
    return path


def _argv(runtime: str, pkg: Path, flag: str, path: Path, request) -> list[str]:
    if runtime == "python":
        return [sys.executable, "-m", "edgepack_runtime", str(pkg), f"--{flag}", str(path)]
    if runtime == "js":
        return [need_js(), str(CHECK_JS), str(pkg), f"--{flag}", str(path)]
    cpp_bin: Path = request.getfixturevalue("cpp_bin")
    if flag == "input":
        return [str(cpp_bin / "predict"), str(pkg), str(path)]
    return [str(cpp_bin / "edgepack_check"), str(pkg), f"--{flag}", str(path)]


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
@pytest.mark.parametrize("flag", ["input", "image", "pubkey"])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_path_that_is_not_a_regular_file_is_refused_at_once(
    runtime, flag, kind, digits, image_package, request, tmp_path
):
    pkg = image_package if flag == "image" else digits.write(tmp_path / "pkg", as_zip=False)
    path = _not_a_file(kind, tmp_path / f"given{_SUFFIX[flag]}")
    message = one_error_line(_argv(runtime, pkg, flag, path, request), timeout=30)
    assert str(path) in message and "not a regular file" in message, message


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_complex_npy_input_is_refused(runtime, digits, request, tmp_path):
    pkg = digits.write(tmp_path / "pkg", as_zip=False)
    raw = tmp_path / "complex.npy"
    np.save(raw, np.ones((2, 64), np.complex64) * (1 + 2j))  # dtype '<c8'
    message = one_error_line(_argv(runtime, pkg, "input", raw, request))
    # Their .npy readers take arrays of numbers only (docs/guarantees.md, the input policy).
    assert str(raw) in message and "complex arrays (<c8)" in message, message


@pytest.mark.parametrize("preprocessing", ["tensor", "none"])
def test_python_refuses_complex_numbers_rather_than_dropping_the_imaginary_part(
    preprocessing, digits, tmp_path
):
    if preprocessing == "none":
        digits.manifest["preprocessing"] = {"type": "none"}
        digits.manifest["samples"].pop("raw")
    pkg = ep.load(digits.write(tmp_path / "pkg", as_zip=False))
    raw = np.full((1, 1, 8, 8), 1 + 2j)
    with pytest.raises(ep.InputError, match=r"input 'input': complex numbers \(complex128\)"):
        pkg.predict(raw)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_public_key_file_over_64_kib_is_refused_unread(runtime, digits, request, tmp_path):
    """A PEM public key is a few hundred bytes; a huge file named as one (a log, a disk image)
    is refused from its size ("too large (N bytes, over 65536)" in each runtime's wording),
    not read into memory."""
    pkg = digits.write(tmp_path / "pkg", as_zip=False)
    key = tmp_path / "huge.pem"
    key.write_bytes(b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 70_000)
    message = one_error_line(_argv(runtime, pkg, "pubkey", key, request))
    assert str(key) in message and "too large" in message and "over 65536" in message, message

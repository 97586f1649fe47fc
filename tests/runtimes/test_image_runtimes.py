"""Image packages in the three runtimes: the same tensor from the same PNG (exactly), a JPEG
within the stated tolerance, the recorded samples reproduced from the raw image files, and
labels printed for an image file.

The package is built by hand (tests/tiny_images.py), so the runtimes are held to
what docs/package-format.md specifies, not to what one writer produces."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from tiny_images import SPEC, build_image_package, reference_tensor, sample_images

REPO = Path(__file__).resolve().parents[2]
JS_CHECK = REPO / "runtimes" / "js" / "bin" / "check.js"
NODE = shutil.which("node")
needs_js = pytest.mark.skipif(
    NODE is None or not (REPO / "runtimes/js/node_modules/pngjs").is_dir(),
    reason="runtimes/js is not installed: cd runtimes/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci",
)
# Measured on the test's JPEGs (and on the photos of scripts/bench_vision.py): libjpeg-turbo
# (Pillow), stb_image and jpeg-js differ in IDCT rounding and chroma upsampling, a few levels
# per pixel; after the 1/255 scale and the std of ~0.22, levels become ~0.018 each.
JPEG_ATOL = 0.5


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    return sample_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def package(tmp_path_factory, images) -> Path:
    return build_image_package(tmp_path_factory.mktemp("pkg") / "tiny", images, JPEG_ATOL)


def _python_tensor(package: Path, image: Path) -> np.ndarray:
    import edgepack_runtime

    return next(iter(edgepack_runtime.load(package).preprocess(image).values()))[0]


def _run_json(argv: list[str]) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _tensor(payload: dict) -> np.ndarray:
    return np.asarray(payload["data"], np.float32).reshape(payload["shape"])[0]


def _js_tensor(package: Path, image: Path) -> np.ndarray:
    return _tensor(
        _run_json([NODE, str(JS_CHECK), str(package), "--image", str(image), "--tensor"])
    )


def _cpp_tensor(cpp_bin: Path, package: Path, image: Path) -> np.ndarray:
    argv = [str(cpp_bin / "edgepack_check"), str(package), "--image", str(image), "--tensor"]
    return _tensor(_run_json(argv))


def _pngs(images):
    return [p for p in images if p.suffix == ".png"]


def _jpegs(images):
    return [p for p in images if p.suffix == ".jpg"]


def test_python_gives_torchvisions_tensor_for_every_kind_of_png(package, images):
    for image in _pngs(images):
        np.testing.assert_allclose(
            _python_tensor(package, image), reference_tensor(image, SPEC), atol=1e-6, rtol=0
        )


@needs_js
def test_node_gives_the_python_tensor_exactly_for_every_png(package, images):
    for image in _pngs(images):
        assert np.array_equal(_js_tensor(package, image), _python_tensor(package, image)), image


def test_cpp_gives_the_python_tensor_exactly_for_every_png(cpp_bin, package, images):
    for image in _pngs(images):
        got = _cpp_tensor(cpp_bin, package, image)
        assert np.array_equal(got, _python_tensor(package, image)), image


@needs_js
def test_jpegs_agree_within_the_stated_tolerance_in_every_runtime(cpp_bin, package, images):
    for image in _jpegs(images):
        py = _python_tensor(package, image)
        for got in (_js_tensor(package, image), _cpp_tensor(cpp_bin, package, image)):
            assert got.shape == py.shape
            assert np.abs(got - py).max() <= JPEG_ATOL, image


def test_python_reproduces_the_samples_from_the_image_files(package):
    import edgepack_runtime

    check = edgepack_runtime.load(package).check_samples()
    assert check.ok, check.message
    assert check.max_abs_diff["pixel_values (png)"] == 0.0


@needs_js
def test_node_reproduces_the_samples_from_the_image_files(package):
    proc = subprocess.run([NODE, str(JS_CHECK), str(package)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: 6 samples"), proc.stderr


def test_cpp_reproduces_the_samples_from_the_image_files(cpp_bin, package):
    proc = subprocess.run(
        [str(cpp_bin / "edgepack_check"), str(package)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("ok: 6 samples"), proc.stderr


def test_a_png_whose_pixels_changed_is_refused_by_every_runtime(cpp_bin, package, tmp_path):
    """Resealed (every sha256 right), but sample 0 no longer gives the recorded tensor."""
    import hashlib

    import edgepack_runtime
    from PIL import Image

    folder = tmp_path / "pkg"
    shutil.copytree(package, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    first = folder / manifest["samples"]["images"][0]
    pixels = np.asarray(Image.open(first).convert("RGB")).copy()
    pixels = 255 - pixels  # every pixel: the crop cannot hide it
    Image.fromarray(pixels).save(first)
    data = first.read_bytes()
    manifest["files"][manifest["samples"]["images"][0]] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    check = edgepack_runtime.load(folder).check_samples()
    assert not check.ok and "samples/images/0.png" in check.message
    cpp = subprocess.run(
        [str(cpp_bin / "edgepack_check"), str(folder)], capture_output=True, text=True
    )
    assert cpp.returncode == 1 and "samples/images/0.png" in cpp.stderr
    if NODE is not None:
        js = subprocess.run([NODE, str(JS_CHECK), str(folder)], capture_output=True, text=True)
        assert js.returncode == 1 and "samples/images/0.png" in js.stderr


def test_every_runtime_prints_the_same_label_for_an_image_file(cpp_bin, package, images):
    import edgepack_runtime

    pkg = edgepack_runtime.load(package)
    for image in _pngs(images):
        label = pkg.predict(image).labels[0]
        cpp = subprocess.run(
            [str(cpp_bin / "edgepack_check"), str(package), "--image", str(image)],
            capture_output=True,
            text=True,
        )
        assert cpp.returncode == 0 and cpp.stdout.split()[0] == label
        if NODE is not None:
            js = _run_json([NODE, str(JS_CHECK), str(package), "--image", str(image)])
            assert js["predictions"][0]["label"] == label


def _refusal(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.slow  # builds the C++ runtime
def test_an_extreme_aspect_ratio_is_refused_by_every_runtime_before_resizing(
    cpp_bin, package, tmp_path
):
    import edgepack_runtime
    from PIL import Image

    strip = tmp_path / "strip.png"  # shorter side 1 -> 20: a 18,000,000 x 20 resize
    Image.new("RGB", (900_000, 1), (200, 10, 10)).save(strip)
    with pytest.raises(edgepack_runtime.InputError, match="16,777,216-pixel cap"):
        edgepack_runtime.load(package).preprocess(strip)
    for argv in (
        [NODE, str(JS_CHECK), str(package), "--image", str(strip), "--tensor"],
        [str(cpp_bin / "edgepack_check"), str(package), "--image", str(strip), "--tensor"],
    ):
        assert "16,777,216-pixel cap" in _refusal(argv)


def test_a_16_bit_rgb_png_is_refused_in_python(package, tmp_path):
    import edgepack_runtime
    from PIL import Image

    png = tmp_path / "deep.png"
    Image.new("RGB", (8, 8)).save(png)
    data = bytearray(png.read_bytes())
    assert data[24] == 8  # the IHDR bit depth: Pillow cannot write 16-bit RGB, so say it does
    data[24] = 16
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the IHDR chunk's CRC
    png.write_bytes(bytes(data))
    with pytest.raises(edgepack_runtime.InputError, match="16-bit"):
        edgepack_runtime.load(package).preprocess(png)

"""Hostile packages beyond the issue's examples, each refused the same way by the three runtimes
(one error, the same words, no hang, nothing inflated or decoded first):

- the zip contract: a member whose CRC-32 is wrong (Node accepted it) is refused by every reader,
  the manifest and the model included;
- the memory budget: samples whose .npy header does not fit the model's tensors (dtype, rank,
  fixed dims, a name that is no tensor of the model, a size the header contradicts, object,
  Fortran), samples that together pass the 64 MiB cap, sample images whose header claims more
  pixels than the cap (never decoded), a member that inflates 1000x;
- JSON that is not UTF-8 in a label.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hostile_packages import Member, deflate, npy_header, raw_zip, zeros
from runtime_drivers import NODE, refusal
from runtimes.conftest import build_digits_package

RUNTIMES = [
    "python",
    pytest.param("js", marks=pytest.mark.skipif(NODE is None, reason="node is not installed")),
    pytest.param("cpp", marks=pytest.mark.slow),
]


def _npy(array: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, **save)
    return buf.getvalue()


def _zip(pkg, dest: Path, **override: Member) -> Path:
    manifest = Member("manifest.json", json.dumps(pkg.manifest).encode())
    members = [override.get("manifest.json", manifest)]
    members += [override.get(n, Member(n, d)) for n, d in pkg.files.items()]
    return raw_zip(dest.with_suffix(".edgepack"), members)


def _with(name: str, data: bytes):
    """A case: the digits package with `name` holding `data`, honestly listed."""

    def build(dest: Path) -> Path:
        pkg = build_digits_package()
        pkg.files[name] = data
        return pkg.seal().write(dest, as_zip=True)

    return build


def _wrong_crc(name: str):
    def build(dest: Path) -> Path:
        pkg = build_digits_package()
        data = json.dumps(pkg.manifest).encode() if name == "manifest.json" else pkg.files[name]
        return _zip(pkg, dest, **{name: Member(name, data, crc=zlib.crc32(data) ^ 1)})

    return build


def _unknown_tensor(dest: Path) -> Path:
    pkg = build_digits_package()
    pkg.manifest["samples"]["outputs"] = {"probabilities": "samples/logits.npy"}
    return pkg.write(dest, as_zip=True)


def _over_the_kept_cap(dest: Path) -> Path:
    """raw.npy and input.npy of 40 MiB each (sparse, honestly hashed): each under the cap, both
    over it, and a folder has no compression ratio to judge."""
    pkg = build_digits_package()
    rows = (40 << 20) // 256
    for name, shape in (("samples/raw.npy", (rows, 64)), ("samples/input.npy", (rows, 1, 8, 8))):
        d = deflate([npy_header(shape), *zeros(rows * 256)])
        pkg.manifest["files"][name] = {"sha256": d.sha256, "size": d.size}
        pkg.files[name] = npy_header(shape)
    folder = pkg.write(dest, as_zip=False)
    for name in ("samples/raw.npy", "samples/input.npy"):
        with open(folder / name, "r+b") as f:
            f.truncate(pkg.manifest["files"][name]["size"])
    return folder


def _inflates_1000x(dest: Path) -> Path:
    """README.md: 64 MiB of zeros in 64 KB, honestly listed (a reader only hashes it)."""
    pkg = build_digits_package()
    d = deflate(zeros(64 << 20))
    pkg.manifest["files"]["README.md"] = {"sha256": d.sha256, "size": d.size}
    members = [Member("manifest.json", json.dumps(pkg.manifest).encode())]
    members += [Member(n, b) for n, b in pkg.files.items() if n != "README.md"]
    return raw_zip(dest.with_suffix(".edgepack"), [*members, ("README.md", d)])


def _label_not_utf8(dest: Path) -> Path:
    pkg = build_digits_package()
    text = json.dumps(pkg.manifest).encode().replace(b'"labels": ["0"', b'"labels": ["\xff\xfe"', 1)
    dest.mkdir(parents=True)
    (dest / "manifest.json").write_bytes(text)
    for name, data in pkg.files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    return dest


INPUT = "samples/input.npy"
SHAPE = (6, 1, 8, 8)
CASES = {  # name: (build, the words in every runtime's message)
    "wrong CRC of a member": (_wrong_crc("README.md"), ("README.md", "Bad CRC-32")),
    "wrong CRC of the model": (_wrong_crc("model.onnx"), ("model.onnx", "Bad CRC-32")),
    "wrong CRC of the manifest": (_wrong_crc("manifest.json"), ("manifest.json", "Bad CRC-32")),
    "sample of another dtype": (
        _with(INPUT, _npy(np.zeros(SHAPE, np.float64))),
        (INPUT, "dtype", "does not fit its use"),
    ),
    "sample of another rank": (
        _with(INPUT, _npy(np.zeros((6, 64), np.float32))),
        (INPUT, "shape", "does not fit its use"),
    ),
    "sample of another fixed dim": (
        _with(INPUT, _npy(np.zeros((6, 1, 8, 9), np.float32))),
        (INPUT, "shape", "does not fit its use"),
    ),
    "raw sample not whole samples": (
        _with("samples/raw.npy", _npy(np.zeros((6, 63), np.float32))),
        ("samples/raw.npy", "not a whole number", "does not fit its use"),
    ),
    "sample of objects": (
        _with(INPUT, _npy(np.zeros(SHAPE, object), allow_pickle=True)),
        (INPUT, "object arrays"),
    ),
    "Fortran-order sample": (
        _with(INPUT, npy_header(SHAPE, fortran=True) + bytes(6 * 64 * 4)),
        (INPUT, "Fortran-order"),
    ),
    "sample header lies about its size": (
        _with(INPUT, npy_header((600, 1, 8, 8)) + bytes(6 * 64 * 4)),
        (INPUT, "data bytes"),
    ),
    "sample of no model tensor": (_unknown_tensor, ("probabilities", "not a model output")),
    "samples over the kept cap": (_over_the_kept_cap, ("64 MiB cap of the memory budget",)),
    "a member that inflates 1000x": (_inflates_1000x, ("README.md", "more than 64 times")),
    "a label that is not UTF-8": (_label_not_utf8, ("manifest.json", "not valid JSON")),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_runtime_refuses_it_saying_why(runtime, case, request, tmp_path):
    build, words = CASES[case]
    pkg = build(tmp_path / "pkg")
    message = refusal(runtime, pkg, request, tmp_path)
    for word in words:
        assert word in message, message


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says width x height RGB and whose data is a few bytes: a decoder that
    trusted the header would allocate width * height * 3 bytes before failing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_sample_image_claiming_25_megapixels_is_refused_undecoded(runtime, request, tmp_path):
    """A package's sample images are held to 2^24 pixels (a 4096 x 4096 photo), checked from
    the header; the same file given by a user would be decoded (Pillow's limit is 178,956,970)."""
    import hashlib

    from tiny_images import build_image_package, sample_images

    images = sample_images(tmp_path / "images")[:1]
    folder = build_image_package(tmp_path / "pkg", images)
    manifest = json.loads((folder / "manifest.json").read_text())
    [name] = manifest["samples"]["images"]
    bomb = _png_claiming(5000, 5000)
    (folder / name).write_bytes(bomb)
    manifest["files"][name] = {"sha256": hashlib.sha256(bomb).hexdigest(), "size": len(bomb)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    message = refusal(runtime, folder, request, tmp_path)
    assert name in message and "5000x5000" in message and "16777216-pixel limit" in message


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_users_image_claiming_400_megapixels_is_refused_undecoded(runtime, request, tmp_path):
    import subprocess
    import sys

    from runtime_drivers import CHECK_JS, need_js, one_error_line
    from tiny_images import build_image_package, sample_images

    folder = build_image_package(tmp_path / "pkg", sample_images(tmp_path / "images")[:1])
    image = tmp_path / "bomb.png"
    image.write_bytes(_png_claiming(20_000, 20_000))
    if runtime == "python":
        argv = [sys.executable, "-m", "edgepack_runtime", str(folder), "--image", str(image)]
    elif runtime == "js":
        argv = [need_js(), str(CHECK_JS), str(folder), "--image", str(image)]
    else:
        argv = [str(request.getfixturevalue("cpp_bin") / "edgepack_check"), str(folder)]
        argv += ["--image", str(image)]
    message = one_error_line(argv)
    assert str(image) in message and "decompression bomb" in message, message
    assert subprocess  # the child ran and refused; no decode buffer was allocated

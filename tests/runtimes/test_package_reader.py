"""edgepack_runtime.open_package: a package's files read verified, and extract_to a folder.

This is the reader tools reuse instead of zipfile (inspect, bench on a package, unpacking for the
C++ runtime): every read checks size and sha256 against the manifest, and extract_to writes only
the listed regular files, or nothing at all.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import edgepack_runtime as ep
import pytest


def test_open_package_lists_and_reads_the_files_as_the_manifest_says(digits, write_package):
    with ep.open_package(write_package(digits)) as reader:
        assert reader.names() == sorted(digits.files)
        assert reader.manifest["name"] == "tiny" and reader.signature == "unsigned"
        for name, data in digits.files.items():
            assert reader.read(name) == data
            assert reader.size(name) == len(data)
        assert reader.read("manifest.json") == reader.manifest_bytes
        assert reader.verify_files(keep=["README.md"]) == {"README.md": b"# tiny\n"}


def test_read_refuses_a_file_whose_bytes_differ_from_the_manifest(digits, write_package):
    digits.files["README.md"] = b"# tinY\n"  # same size: only the hash can tell
    with ep.open_package(write_package(digits)) as reader:
        assert reader.read("model.onnx") == digits.files["model.onnx"]
        with pytest.raises(ep.IntegrityError, match=r"^README\.md: sha256 mismatch"):
            reader.read("README.md")
        with pytest.raises(ep.IntegrityError, match=r"^README\.md: sha256 mismatch"):
            reader.verify_files()
        with pytest.raises(ep.InvalidPackageError, match="not a file of this package"):
            reader.read("nope.bin")


def test_extract_to_writes_exactly_the_listed_files_and_the_manifest_bytes(digits, tmp_path):
    with ep.open_package(digits.write(tmp_path / "pkg", as_zip=True)) as reader:
        folder = reader.extract_to(tmp_path / "out")
        manifest = reader.manifest_bytes
    written = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert written == {"manifest.json", *digits.files}
    assert (folder / "manifest.json").read_bytes() == manifest  # byte for byte: signatures hold
    assert ep.load(folder).check_samples().ok


def test_extract_to_copies_the_signature_so_the_folder_still_verifies(digits, tmp_path):
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from cryptography.hazmat.primitives import serialization

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = digits.write(tmp_path / "pkg", as_zip=True)
    with zipfile.ZipFile(path) as zf:
        signature = key.sign(zf.read("manifest.json"))
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("manifest.sig", signature)
    with ep.open_package(path, pubkey=pem) as reader:
        assert reader.signature.startswith("verified by ed25519:")
        folder = reader.extract_to(tmp_path / "out")
    assert ep.load(folder, pubkey=pem).signature.startswith("verified by")


def test_extract_to_leaves_nothing_behind_when_a_file_does_not_verify(digits, tmp_path):
    model = bytearray(digits.files["model.onnx"])
    model[len(model) // 2] ^= 0x01
    digits.files["model.onnx"] = bytes(model)
    out = tmp_path / "out"
    reader = ep.open_package(digits.write(tmp_path / "pkg", as_zip=True))
    with reader, pytest.raises(ep.IntegrityError, match=r"^model\.onnx: sha256 mismatch"):
        reader.extract_to(out)
    assert list(out.iterdir()) == []


def test_extract_to_needs_an_empty_folder(digits, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    reader = ep.open_package(digits.write(tmp_path / "pkg", as_zip=True))
    with reader, pytest.raises(ValueError, match="needs an empty or new folder"):
        reader.extract_to(tmp_path / "out")
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


def test_a_zip_bomb_is_refused_before_a_byte_of_it_is_inflated(digits, tmp_path):
    """64 MiB of zeros where the manifest lists 100 bytes: neither memory nor disk sees it."""
    digits.files["README.md"] = bytes(64 << 20)  # after sealing: the manifest keeps the old size
    path = digits.write(tmp_path / "bomb", as_zip=True)
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        with pytest.raises(ep.IntegrityError, match=r"^README\.md: size mismatch"):
            ep.load(path)
        with pytest.raises(ep.IntegrityError, match=r"^README\.md: size mismatch"):
            ep.open_package(path).extract_to(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak} bytes allocated: the member was inflated"
    assert not out.exists()


def test_a_file_that_grows_after_the_listing_is_refused_unread(digits, tmp_path):
    """7 bytes listed and 7 bytes when the folder was opened; 4 MiB more by the time it is read."""
    folder = digits.write(tmp_path / "pkg", as_zip=False)
    with ep.open_package(folder) as reader:
        with open(folder / "README.md", "ab") as f:
            f.write(bytes(4 << 20))
        with pytest.raises(ep.IntegrityError, match=r"^README\.md: size mismatch .* got 4194311"):
            reader.read("README.md")


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "edgepack_runtime", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_cli_extract_to_writes_a_verified_folder(digits, tmp_path):
    path = digits.write(tmp_path / "pkg", as_zip=True)
    result = _cli(path, "--extract-to", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {len(digits.files)} files verified and written to ")
    readme = (tmp_path / "out" / "README.md").read_bytes()
    assert hashlib.sha256(readme).hexdigest() == digits.manifest["files"]["README.md"]["sha256"]


def test_cli_extract_to_refuses_a_duplicate_member_in_one_line(digits, tmp_path):
    path = digits.write(tmp_path / "pkg", as_zip=True)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("model.onnx", b"the second copy")
    result = _cli(path, "--extract-to", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "duplicate zip member 'model.onnx'" in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

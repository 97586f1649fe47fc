"""The promise: a malformed or hostile package is refused by every runtime the same way.

Each case below builds its package on the fly (from conftest's tiny digits package) and hands it
to the three runtimes; each must refuse it with ONE clear error of its own error type whose
message says the same thing (the `fragments`), never hang, crash, print a traceback, or inflate
or read more than the manifest allows:

  python  edgepack_runtime.load() (then predict, for input faults), in this process
  js      node runtimes/js/bin/check.js PKG [--input RAW.npy]
  cpp     runtimes/cpp/build/edgepack_check FOLDER (predict FOLDER RAW.npy for input faults)

The C++ runtime reads folders: a zip reaches it the documented way, through
edgepack_runtime.open_package(zip).extract_to(folder), so for faults only a zip can have (a
duplicate or symlink member, a lying header) a C++ user sees that reader's refusal.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import edgepack_runtime as ep
import numpy as np
import pytest
from hostile_packages import Member, raw_zip
from runtime_drivers import CHECK_JS, NODE, TIMEOUT_S, need_js, no_hang, one_error_line

BOMB = bytes(64 << 20)  # 64 MiB of zeros: about 64 KB deflated


def _raw_zip(path: Path, members: list[Member]) -> Path:
    return raw_zip(path, members)


def _members(pkg, manifest: str | None = None) -> list[Member]:
    text = json.dumps(pkg.manifest) if manifest is None else manifest
    return [Member("manifest.json", text.encode()), *(Member(n, d) for n, d in pkg.files.items())]


def _write(pkg, dest: Path, layout: str, manifest: str | None = None) -> Path:
    members = _members(pkg, manifest)
    if layout == "zip":
        return _raw_zip(dest.with_suffix(".edgepack"), members)
    for m in members:
        (dest / m.name).parent.mkdir(parents=True, exist_ok=True)
        (dest / m.name).write_bytes(m.data)
    return dest


def _list(pkg, name: str, data: bytes) -> None:
    pkg.manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


# --- the cases -------------------------------------------------------------------------------


def duplicate_member(pkg, dest, layout):
    """model.onnx twice: a tampered copy first, the intact one last (what extractall keeps)."""
    tampered = bytearray(pkg.files["model.onnx"])
    tampered[len(tampered) // 2] ^= 0x01
    members = _members(pkg)
    return _raw_zip(
        dest.with_suffix(".edgepack"), [Member("model.onnx", bytes(tampered)), *members]
    )


def symlink_member(pkg, dest, layout):
    """README.md is a symlink member whose target text the manifest lists faithfully."""
    target = b"samples/raw.npy"
    _list(pkg, "README.md", target)
    members = [m for m in _members(pkg) if m.name != "README.md"]
    return _raw_zip(
        dest.with_suffix(".edgepack"), [*members, Member("README.md", target, 0o120777)]
    )


def symlinked_file(pkg, dest, layout):
    """README.md links to a file outside the package that holds exactly the listed bytes."""
    folder = _write(pkg, dest, "folder")
    outside = dest.parent / "outside.md"
    outside.write_bytes(pkg.files["README.md"])
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(outside)
    return folder


def symlinked_folder(pkg, dest, layout):
    """samples/ links to a folder outside the package holding exactly the listed samples."""
    folder = _write(pkg, dest, "folder")
    (folder / "samples").rename(dest.parent / "outside")
    (folder / "samples").symlink_to(dest.parent / "outside", target_is_directory=True)
    return folder


def fifo(pkg, dest, layout):
    """A FIFO where the manifest lists an empty README.md: opening it would block forever."""
    pkg.files["README.md"] = b""
    folder = _write(pkg.seal(), dest, "folder")
    (folder / "README.md").unlink()
    os.mkfifo(folder / "README.md")
    return folder


def bigger_than_listed(pkg, dest, layout):
    pkg.files["README.md"] += b"appended after sealing"
    return _write(pkg, dest, layout)


def unlisted_member(pkg, dest, layout):
    pkg.files["extra.bin"] = b"not in the manifest"
    return _write(pkg, dest, layout)


def dotdot_path(pkg, dest, layout):
    _list(pkg, "../evil.txt", b"x")
    return _write(pkg, dest, layout)


def zip_bomb(pkg, dest, layout):
    """A 64 MiB member (honest header) that the manifest lists as 100 bytes."""
    pkg.manifest["files"]["README.md"] = {"sha256": "0" * 64, "size": 100}
    members = [m for m in _members(pkg) if m.name != "README.md"]
    return _raw_zip(dest.with_suffix(".edgepack"), [*members, Member("README.md", BOMB)])


def lying_header(pkg, dest, layout):
    """Headers and manifest agree on 100 bytes; the member inflates to 64 MiB."""
    _list(pkg, "README.md", BOMB[:100])
    bomb = Member("README.md", BOMB, declared=100, crc=zlib.crc32(BOMB[:100]))
    members = [m for m in _members(pkg) if m.name != "README.md"]
    return _raw_zip(dest.with_suffix(".edgepack"), [*members, bomb])


def over_the_file_cap(pkg, dest, layout):
    """The manifest (and, in a zip, the header) claim a 3 GiB README.md."""
    huge = 3 << 30
    pkg.manifest["files"]["README.md"]["size"] = huge
    if layout == "folder":
        return _write(pkg, dest, layout)
    members = [m for m in _members(pkg) if m.name != "README.md"]
    readme = Member("README.md", pkg.files["README.md"], declared=huge)
    return _raw_zip(dest.with_suffix(".edgepack"), [*members, readme])


def oversized_manifest(pkg, dest, layout):
    """Valid JSON, padded with whitespace to one byte over the manifest cap."""
    text = json.dumps(pkg.manifest)
    return _write(pkg, dest, layout, text + " " * (ep.MAX_MANIFEST_BYTES + 1 - len(text)))


def nested_manifest(pkg, dest, layout):
    """A field nested 10000 lists deep: Python's json recurses, and so do nlohmann's copies."""
    text = json.dumps(pkg.manifest)[:-1] + ', "extra": ' + "[" * 10_000 + "]" * 10_000 + "}"
    return _write(pkg, dest, layout, text)


def huge_sample_shape(pkg, dest, layout):
    """A sample shape whose product wraps int64 to 0 (C++ divided by it)."""
    manifest = json.loads(json.dumps(pkg.manifest))
    manifest["preprocessing"]["sample_shape"] = [2**62, 4]
    return _write(pkg, dest, layout, json.dumps(manifest))


def _manifest_with(old: str, new: str) -> Callable:
    """A case whose manifest text has `old` replaced by `new`: what json.dumps would not write."""

    def build(pkg, dest, layout):
        text = json.dumps(pkg.manifest)
        assert text.count(old) == 1, old
        return _write(pkg, dest, layout, text.replace(old, new))

    return build


def intact(pkg, dest, layout):
    return _write(pkg, dest, layout)


def _raw_with(value: float) -> np.ndarray:
    raw = np.random.default_rng(0).integers(0, 17, size=(2, 64)).astype(np.float64)
    raw[1, 5] = value
    return raw


@dataclass(frozen=True)
class Case:
    build: Callable
    layouts: tuple[str, ...]
    fragments: tuple[str, ...]  # in every runtime's message
    error: type[ep.EdgepackRuntimeError]  # Python's class (JS and C++ print the message only)
    raw: np.ndarray | None = None  # input to predict on, for input faults


BOTH, ZIP, FOLDER = ("zip", "folder"), ("zip",), ("folder",)
_NOT_JSON = ("manifest.json", "not valid JSON")
_OUT_OF_RANGE = (*_NOT_JSON, "out of range of a double")
_BOM = ("manifest.json", "byte order mark")
_INVALID, _MINUS_1E400 = ep.InvalidPackageError, "-1" + "0" * 400 + "}"
CASES = {
    "duplicate-member": Case(
        duplicate_member, ZIP, ("duplicate zip member", "model.onnx"), ep.InvalidPackageError
    ),
    "symlink-member": Case(
        symlink_member, ZIP, ("README.md", "is a symlink"), ep.InvalidPackageError
    ),
    "symlinked-file": Case(
        symlinked_file, FOLDER, ("README.md", "is a symlink"), ep.InvalidPackageError
    ),
    "symlinked-folder": Case(
        symlinked_folder, FOLDER, ("samples", "is a symlink"), ep.InvalidPackageError
    ),
    "fifo": Case(fifo, FOLDER, ("README.md", "not a regular file"), ep.InvalidPackageError),
    "bigger-than-listed": Case(
        bigger_than_listed, BOTH, ("README.md", "size mismatch"), ep.IntegrityError
    ),
    "unlisted-member": Case(unlisted_member, BOTH, ("extra.bin", "not listed"), ep.IntegrityError),
    "dotdot-path": Case(
        dotdot_path, BOTH, ("unsafe file name", "../evil.txt"), ep.InvalidPackageError
    ),
    "zip-bomb": Case(zip_bomb, ZIP, ("README.md", "size mismatch"), ep.IntegrityError),
    "lying-header": Case(lying_header, ZIP, ("README.md", "compressed bytes"), ep.IntegrityError),
    "over-the-file-cap": Case(
        over_the_file_cap, BOTH, ("README.md", "2 GiB cap"), ep.InvalidPackageError
    ),
    "oversized-manifest": Case(
        oversized_manifest, BOTH, ("manifest.json", "16 MiB cap"), ep.InvalidPackageError
    ),
    "nested-manifest": Case(
        nested_manifest, BOTH, ("manifest.json", "nested deeper than 64"), ep.InvalidPackageError
    ),
    # A UTF-8 byte order mark (nlohmann and TextDecoder skipped it); JSON has no NaN or infinity
    # and a double cannot hold 1e999 or -1e400 (C++'s parser refused them, Python's json and
    # JS read infinity: an atol that lets any output through).
    "bom-manifest": Case(
        _manifest_with('{"schema_version"', '\ufeff{"schema_version"'), BOTH, _BOM, _INVALID
    ),
    "nan-in-manifest": Case(_manifest_with("0.9}", "NaN}"), BOTH, _NOT_JSON, _INVALID),
    "infinity-atol": Case(_manifest_with("0.0001,", "Infinity,"), BOTH, _NOT_JSON, _INVALID),
    "overflowing-atol": Case(_manifest_with("0.0001,", "1e999,"), BOTH, _OUT_OF_RANGE, _INVALID),
    "overflowing-metric": Case(_manifest_with("0.9}", _MINUS_1E400), BOTH, _OUT_OF_RANGE, _INVALID),
    "huge-sample-shape": Case(huge_sample_shape, BOTH, ("values",), ep.EdgepackRuntimeError),
    "nan-input": Case(
        intact, BOTH, ("input 'input'", "NaN or infinity"), ep.InputError, _raw_with(np.nan)
    ),
    "inf-input": Case(
        intact, BOTH, ("input 'input'", "NaN or infinity"), ep.InputError, _raw_with(-np.inf)
    ),
}


def _params():
    for name, case in CASES.items():
        for layout in case.layouts:
            for runtime in ("python", "js", "cpp"):
                marks = [pytest.mark.slow] if runtime == "cpp" else []
                if runtime == "js":
                    marks.append(pytest.mark.skipif(NODE is None, reason="node is not installed"))
                yield pytest.param(
                    name, layout, runtime, id=f"{name}-{layout}-{runtime}", marks=marks
                )


# --- driving the runtimes ----------------------------------------------------------------------


def _python(pkg: Path, case: Case) -> str:
    with no_hang(), pytest.raises(ep.EdgepackRuntimeError) as refused:
        loaded = ep.load(pkg)
        if case.raw is None:
            loaded.check_samples()
        else:
            loaded.predict(case.raw)
    assert isinstance(refused.value, case.error), repr(refused.value)
    return str(refused.value)


def _refusal(runtime: str, pkg: Path, case: Case, request, tmp_path: Path) -> str:
    raw = None
    if case.raw is not None:
        raw = tmp_path / "raw.npy"
        np.save(raw, case.raw)
    if runtime == "python":
        return _python(pkg, case)
    if runtime == "js":
        extra = [] if raw is None else ["--input", str(raw)]
        return one_error_line([need_js(), str(CHECK_JS), str(pkg), *extra])
    cpp_bin: Path = request.getfixturevalue("cpp_bin")
    folder = pkg
    if pkg.is_file():  # the documented way to hand a .edgepack to the C++ runtime
        folder = tmp_path / "extracted"
        try:
            with no_hang(), ep.open_package(pkg) as reader:
                reader.extract_to(folder)
        except ep.EdgepackRuntimeError as err:
            assert not folder.exists() or not any(folder.iterdir()), "a refused file was left"
            return str(err)
    if raw is not None:
        return one_error_line([str(cpp_bin / "predict"), str(folder), str(raw)])
    return one_error_line([str(cpp_bin / "edgepack_check"), str(folder)])


@pytest.mark.parametrize(("case", "layout", "runtime"), list(_params()))
def test_every_runtime_refuses_it_with_one_error_saying_why(
    case, layout, runtime, digits, request, tmp_path
):
    pkg = CASES[case].build(digits, tmp_path / "pkg", layout)
    message = _refusal(runtime, pkg, CASES[case], request, tmp_path)
    assert "\n" not in message
    for fragment in CASES[case].fragments:
        assert fragment in message, message


@pytest.mark.parametrize("layout", BOTH)
@pytest.mark.parametrize("runtime", ["python", "js", pytest.param("cpp", marks=pytest.mark.slow)])
def test_the_intact_package_these_cases_start_from_passes(
    runtime, layout, digits, request, tmp_path
):
    """The faults above are the only thing wrong: the same package untouched is accepted."""
    if runtime == "js" and NODE is None:
        pytest.skip("node is not installed")
    pkg = intact(digits, tmp_path / "pkg", layout)
    if runtime == "python":
        assert ep.load(pkg).check_samples().ok
        return
    if runtime == "js":
        argv = [NODE, str(CHECK_JS), str(pkg)]
    else:
        folder = pkg
        if layout == "zip":
            with ep.open_package(pkg) as reader:
                folder = reader.extract_to(tmp_path / "extracted")
        argv = [str(request.getfixturevalue("cpp_bin") / "edgepack_check"), str(folder)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: 6 samples"), proc


@pytest.mark.slow
def test_edgepack_verify_runtime_cpp_refuses_a_duplicate_member(
    cpp_bin, digits, tmp_path, monkeypatch
):
    from packager.verify import verify_package

    monkeypatch.setenv("EDGEPACK_CPP_CHECK", str(cpp_bin / "edgepack_check"))
    pkg = duplicate_member(digits, tmp_path / "dup", "zip")
    [check] = verify_package(pkg, ["cpp"])
    assert not check.ok and "duplicate zip member" in check.message, check.line()

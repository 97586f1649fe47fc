"""runtimes/cpp: the C++ check tool and example app on a real digits package folder.

runtimes/cpp/setup.sh builds once per session (headers from Debian trixie, the onnxruntime
wheel's library); each test then unzips the session's tiny digits build and runs the binaries.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def pkg(tiny_build, tmp_path: Path) -> Path:
    """A fresh unzipped copy of the session's digits package: tests may tamper with it."""
    folder = tmp_path / "pkg"
    with zipfile.ZipFile(tiny_build.package_path) as zf:
        zf.extractall(folder)
    return folder


def _check(cpp_bin: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(cpp_bin / "edgepack_check"), str(folder), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def _refused(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert a refusal is exit code 1 with exactly one `error:` line; return that line."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _reseal(folder: Path, manifest: dict) -> None:
    """Rewrite manifest.json with every listed file's current sha256 and size."""
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_check_reproduces_the_recorded_sample_outputs(cpp_bin, pkg):
    proc = _check(cpp_bin, pkg)
    assert proc.returncode == 0, proc.stderr
    match = re.fullmatch(r"ok: (\d+) samples reproduced \(max abs diff (\S+)\)\n", proc.stdout)
    assert match, proc.stdout
    assert int(match.group(1)) == _manifest(pkg)["samples"]["count"]
    assert float(match.group(2)) <= _manifest(pkg)["samples"]["atol"]


def test_predict_example_gives_the_top_label_of_each_raw_sample(cpp_bin, pkg):
    proc = subprocess.run(
        [str(cpp_bin / "predict"), str(pkg)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    logits = np.load(pkg / "samples/logits.npy").astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = _manifest(pkg)["postprocessing"]["labels"]
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert [r[0] for r in rows] == [labels[i] for i in probs.argmax(axis=1)]
    np.testing.assert_allclose([float(r[1]) for r in rows], probs.max(axis=1), atol=1e-4)


def test_one_flipped_byte_in_the_model_is_refused(cpp_bin, pkg):
    model = bytearray((pkg / "model.onnx").read_bytes())
    model[len(model) // 2] ^= 0x01
    (pkg / "model.onnx").write_bytes(bytes(model))
    line = _refused(_check(cpp_bin, pkg))
    assert line.startswith("error: model.onnx: sha256 mismatch (expected ")


def test_an_unlisted_extra_file_is_refused(cpp_bin, pkg):
    (pkg / "samples" / "extra.npy").write_bytes(b"not listed")
    line = _refused(_check(cpp_bin, pkg))
    assert line.startswith("error: samples/extra.npy: not listed in manifest.json")


def test_an_unknown_schema_major_is_refused(cpp_bin, pkg):
    manifest = _manifest(pkg)
    manifest["schema_version"] = "2.0"
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    line = _refused(_check(cpp_bin, pkg))
    assert "schema_version 2.0 is not supported" in line


def test_preprocessing_that_does_not_give_the_recorded_input_is_refused(cpp_bin, pkg):
    manifest = _manifest(pkg)
    manifest["preprocessing"]["scale"] *= 2  # manifest.json is not hashed: no reseal needed
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    line = _refused(_check(cpp_bin, pkg))
    assert line.startswith("error: samples/raw.npy: preprocessing gives")


def test_outputs_that_do_not_reproduce_are_refused(cpp_bin, pkg):
    logits = np.load(pkg / "samples/logits.npy")
    np.save(pkg / "samples/logits.npy", logits + 0.5)
    _reseal(pkg, _manifest(pkg))  # a consistent package whose numbers are wrong
    line = _refused(_check(cpp_bin, pkg))
    assert re.match(r"error: logits: \d+ samples do not reproduce samples/logits.npy", line)


def test_signature_passes_with_its_key_and_is_refused_with_another(cpp_bin, pkg, tmp_path):
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from cryptography.hazmat.primitives import serialization

    def pem(private: ed25519.Ed25519PrivateKey, name: str) -> str:
        path = tmp_path / name
        path.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return str(path)

    key, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    right, wrong = pem(key, "right.pem"), pem(other, "wrong.pem")

    line = _refused(_check(cpp_bin, pkg, "--pubkey", right))
    assert line.startswith("error: manifest.sig: missing")

    (pkg / "manifest.sig").write_bytes(key.sign((pkg / "manifest.json").read_bytes()))
    assert _check(cpp_bin, pkg, "--pubkey", right).returncode == 0
    assert _check(cpp_bin, pkg).returncode == 0  # without a key, a signed package still loads
    line = _refused(_check(cpp_bin, pkg, "--pubkey", wrong))
    assert line.startswith("error: manifest.sig: signature does not match the public key")

    # The signature covers the exact manifest bytes: even a trailing newline is refused.
    with open(pkg / "manifest.json", "ab") as f:
        f.write(b"\n")
    line = _refused(_check(cpp_bin, pkg, "--pubkey", right))
    assert line.startswith("error: manifest.sig: signature does not match the public key")

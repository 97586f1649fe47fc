"""Signed packages: manifest.sig = raw ed25519 signature over manifest.json's exact bytes.

Keys and signatures are made here with `cryptography` directly, not with the packager: the
runtime must accept what the format describes, not what one writer happens to produce.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import edgepack_runtime as ep
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def pubkey(key, tmp_path) -> Path:
    path = tmp_path / "signer.pub"
    path.write_bytes(_public_pem(key))
    return path


def _sign(package, key: Ed25519PrivateKey) -> None:
    """Sign the manifest bytes exactly as TinyPackage.write will store them."""
    package.files["manifest.sig"] = key.sign(json.dumps(package.manifest).encode())


def test_a_signed_package_loads_with_its_public_key(digits, key, pubkey, write_package):
    _sign(digits, key)
    pkg = ep.load(write_package(digits), pubkey=pubkey)
    assert pkg.signature.startswith("verified by ed25519:")
    assert pkg.info()["signature"] == pkg.signature
    assert pkg.verify().ok


def test_pem_bytes_work_as_the_key_too(digits, key, tmp_path):
    _sign(digits, key)
    assert ep.load(digits.write(tmp_path / "p", as_zip=True), pubkey=_public_pem(key)).name


def test_without_a_key_the_signature_is_reported_not_checked(digits, key, tmp_path):
    assert ep.load(digits.write(tmp_path / "a", as_zip=True)).signature == "unsigned"
    _sign(digits, key)
    assert ep.load(digits.write(tmp_path / "b", as_zip=True)).signature == "not checked"


def test_an_unsigned_package_is_refused_when_a_key_is_given(digits, pubkey, write_package):
    with pytest.raises(ep.SignatureError, match=r"not signed \(no manifest\.sig\)"):
        ep.load(write_package(digits), pubkey=pubkey)


def test_a_signature_by_another_key_is_refused(digits, pubkey, write_package):
    _sign(digits, Ed25519PrivateKey.generate())
    with pytest.raises(ep.SignatureError, match="does not match public key ed25519:"):
        ep.load(write_package(digits), pubkey=pubkey)


def test_a_manifest_changed_after_signing_is_refused_even_if_rehashed(
    digits, key, pubkey, tmp_path
):
    _sign(digits, key)
    digits.files["model.onnx"] += b"\0"  # a swapped model, with a manifest that matches it
    digits.seal()
    with pytest.raises(ep.SignatureError, match=r"manifest\.json was modified after signing"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True), pubkey=pubkey)


def test_a_truncated_signature_is_refused(digits, key, pubkey, tmp_path):
    _sign(digits, key)
    digits.files["manifest.sig"] = digits.files["manifest.sig"][:63]
    with pytest.raises(ep.SignatureError, match="expected a 64-byte ed25519 signature, got 63"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True), pubkey=pubkey)


def test_the_signature_is_checked_before_the_manifest_is_parsed(digits, pubkey, tmp_path):
    path = digits.write(tmp_path / "pkg", as_zip=False)
    (path / "manifest.json").write_text("{ not json")
    (path / "manifest.sig").write_bytes(bytes(64))
    with pytest.raises(ep.SignatureError, match="does not match"):
        ep.load(path, pubkey=pubkey)


def test_a_flipped_byte_in_a_signed_package_is_still_an_integrity_error(
    digits, key, pubkey, tmp_path
):
    _sign(digits, key)  # the signature is fine; the model no longer matches its listed hash
    path = digits.write(tmp_path / "pkg", as_zip=False)
    model = bytearray((path / "model.onnx").read_bytes())
    model[len(model) // 2] ^= 0x01
    (path / "model.onnx").write_bytes(bytes(model))
    with pytest.raises(ep.IntegrityError, match=r"model\.onnx: sha256 mismatch"):
        ep.load(path, pubkey=pubkey)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"hello", "not a PEM public key"),
        (b"rsa", "expected an ed25519 key"),
    ],
)
def test_a_bad_public_key_file_is_a_value_error_naming_it(digits, tmp_path, content, message):
    path = tmp_path / "key.pub"
    if content == b"rsa":
        from cryptography.hazmat.primitives.asymmetric import rsa

        content = (
            rsa.generate_private_key(public_exponent=65537, key_size=1024)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"public key {path}: {message}"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True), pubkey=path)


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_cli_pubkey_refuses_a_wrong_signature_in_one_line(digits, pubkey, tmp_path):
    _sign(digits, Ed25519PrivateKey.generate())
    path = digits.write(tmp_path / "pkg", as_zip=True)
    out = _python(
        "-m", "edgepack_runtime", str(path), "--check", "--pubkey", str(pubkey), cwd=tmp_path
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: manifest.sig: signature does not match")
    assert out.stderr.count("\n") == 1


def test_cryptography_is_imported_only_to_verify_and_its_absence_is_explained(
    digits, key, pubkey, tmp_path
):
    _sign(digits, key)
    path = digits.write(tmp_path / "pkg", as_zip=True)
    lazy = (
        "import sys, edgepack_runtime as ep\n"
        f"ep.load({str(path)!r})\n"
        "print('cryptography' in sys.modules)\n"
    )
    assert _python("-c", lazy, cwd=tmp_path).stdout.strip() == "False"
    absent = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import edgepack_runtime as ep\n"
        f"try: ep.load({str(path)!r}, pubkey={str(pubkey)!r})\n"
        "except ep.UnsupportedPackageError as e: print(e)\n"
    )
    out = _python("-c", absent, cwd=tmp_path)
    assert "pip install 'edgepack-runtime[sign]'" in out.stdout, out.stderr

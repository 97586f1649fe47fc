"""edgepack keygen, build --sign and verify --pubkey (packager/signing.py, packager/cli/keys.py)."""

from __future__ import annotations

import errno
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from packager.cli import cli
from packager.errors import InputFileError, OutputError
from packager.signing import keygen, publish_signed, read_private_key


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_keygen_writes_a_private_key_0600_and_its_public_key(tmp_path):
    out = _invoke("keygen", str(tmp_path / "k"))
    assert out.exit_code == 0, out.output
    private, public = tmp_path / "k", tmp_path / "k.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")  # SubjectPublicKeyInfo
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert (
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == public.read_bytes()
    )
    assert "ed25519:" in out.output


@pytest.mark.parametrize("existing", ["k", "k.pub"])
def test_keygen_refuses_to_overwrite_either_file(tmp_path, existing):
    (tmp_path / existing).write_text("precious")
    out = _invoke("keygen", str(tmp_path / "k"))
    assert out.exit_code == 2
    assert "already exists; refusing to overwrite" in out.output
    assert (tmp_path / existing).read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]  # nothing half-written


def test_keygen_never_replaces_a_key_that_appears_while_it_runs(tmp_path, monkeypatch):
    """Both halves or neither: a private key someone else wrote after the check is kept, and the
    public half already published is taken back."""
    link = os.link

    def racing(src, dst, *args, **kwargs):
        if Path(dst).name == "k":
            Path(dst).write_text("someone else's key")
        return link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", racing)
    with pytest.raises(InputFileError, match="k: already exists; refusing to overwrite"):
        keygen(tmp_path / "k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]
    assert (tmp_path / "k").read_text() == "someone else's key"


def test_keygen_publishes_both_keys_where_the_filesystem_has_no_hard_links(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):  # what link() says on vfat
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    private, public = keygen(tmp_path / "k")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "k.pub"]
    pem = (
        read_private_key(private)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert public.read_bytes() == pem


def test_a_bad_signing_key_fails_before_any_stage_runs(tmp_path):
    bad = tmp_path / "k"
    bad.write_text("not a key")
    out = _invoke("build", "--sign", str(bad), "--cache-dir", str(tmp_path / "c"))
    assert out.exit_code == 2
    assert "not an unencrypted PEM private key" in out.output
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("artifact.json"))


def test_publish_signed_adds_a_64_byte_signature_over_the_stored_manifest(tiny_build, tmp_path):
    private, _ = keygen(tmp_path / "k")
    dest = publish_signed(tiny_build.package_path, tmp_path / "out" / "p.edgepack", private)
    with zipfile.ZipFile(dest) as zf:
        sig, manifest = zf.read("manifest.sig"), zf.read("manifest.json")
        names = zf.namelist()
    assert len(sig) == 64
    read_private_key(private).public_key().verify(sig, manifest)  # raises if wrong
    with zipfile.ZipFile(tiny_build.package_path) as zf:
        assert sorted(names) == sorted([*zf.namelist(), "manifest.sig"])
    with pytest.raises(InputFileError, match="already signed"):
        publish_signed(dest, tmp_path / "again.edgepack", private)


@pytest.fixture(scope="module")
def signed(tiny_build, cache_dir, tmp_path_factory):
    """tiny_build published again with --sign: every stage cached, only the copy is signed."""
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    root = tmp_path_factory.mktemp("signed")
    private, public = keygen(root / "k")
    recipe = tiny_recipe(package={"out_dir": str(root / "dist")})
    result = build(recipe, cache_dir=cache_dir, reporter=SilentReporter(), sign_key=private)
    return result, private, public


@pytest.mark.slow
def test_signing_happens_at_publish_time_and_the_cache_never_holds_the_key(signed, cache_dir):
    result, private, _ = signed
    # Only `package` may rerun (out_dir is part of its config); signing adds no stage.
    assert set(result.ran) <= {"package"}
    key = read_private_key(private)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    secrets = [raw, private.read_bytes(), str(private).encode()]
    for path in Path(cache_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s in data for s in secrets), f"{path} holds the private key"
    with zipfile.ZipFile(result.artifact("package").file()) as zf:
        assert "manifest.sig" not in zf.namelist()  # the cached package stays unsigned


@pytest.mark.slow
def test_verify_pubkey_accepts_the_signer_and_refuses_another_key(signed, tmp_path):
    result, _, public = signed
    ok = _invoke("verify", str(result.package_path), "--pubkey", str(public))
    assert ok.exit_code == 0, ok.output
    assert "signature verified by ed25519:" in ok.output
    _, other = keygen(tmp_path / "other")
    bad = _invoke("verify", str(result.package_path), "--pubkey", str(other))
    assert bad.exit_code == 5
    assert "manifest.sig: signature does not match public key" in bad.output


def test_verify_with_an_unreadable_pubkey_is_a_one_line_usage_error(tiny_build, tmp_path):
    out = _invoke("verify", str(tiny_build.package_path), "--pubkey", str(tmp_path / "nope.pub"))
    assert out.exit_code == 2
    assert out.output.startswith("error: --pubkey") and out.output.count("\n") == 1


def _model_signing(*args: str):
    import shutil
    import subprocess
    import sys

    exe = shutil.which("model_signing", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("model-signing is not installed: pip install 'edgepack[model-signing]'")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_model_signing_verify_accepts_a_model_signing_package_and_refuses_one_changed_byte(
    tiny_build, cache_dir, tmp_path
):
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    keys = _invoke("keygen", str(tmp_path / "ec.key"), "--type", "ecdsa-p256")
    assert keys.exit_code == 0, keys.output
    recipe = tiny_recipe(package={"out_dir": str(tmp_path / "dist")})
    result = build(
        recipe,
        cache_dir=cache_dir,
        reporter=SilentReporter(),
        sign_key=tmp_path / "ec.key",
        sign_format="model-signing",
    )
    pkg = result.package_path
    sig = Path(f"{pkg}.sig")
    assert json_media_type(sig) == "application/vnd.dev.sigstore.bundle.v0.3+json"
    with zipfile.ZipFile(pkg) as zf:
        assert "manifest.sig" not in zf.namelist()  # detached: no reader meets an unlisted file
    args = ["verify", "key", "--signature", str(sig), "--public_key", str(tmp_path / "ec.key.pub")]
    ok = _model_signing(*args, str(pkg))
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout + ok.stderr
    data = bytearray(pkg.read_bytes())
    data[len(data) // 2] ^= 0x01
    pkg.write_bytes(bytes(data))
    bad = _model_signing(*args, str(pkg))
    assert bad.returncode != 0 and "Verification failed" in bad.stdout + bad.stderr
    report = pkg.name.removesuffix(".edgepack") + ".report.html"  # the page beside it (issue 29)
    assert sorted(p.name for p in pkg.parent.iterdir()) == sorted([pkg.name, sig.name, report])


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["bundle-path-is-a-folder", "signer-fails"])
def test_a_model_signing_publish_that_fails_leaves_the_output_as_it_was(
    tiny_build, cache_dir, tmp_path, monkeypatch, fault
):
    model_signing = pytest.importorskip("model_signing")
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    private, _ = keygen(tmp_path / "ec.key", "ecdsa-p256")
    dist = tmp_path / "dist"
    dest = dist / tiny_build.package_path.name
    dist.mkdir()
    dest.write_bytes(b"last week's package")
    if fault == "bundle-path-is-a-folder":
        Path(f"{dest}.sig").mkdir()
    else:

        def fails(self, model_path, signature_path):
            raise RuntimeError("signer unavailable")

        monkeypatch.setattr(model_signing.signing.Config, "sign", fails)
    recipe = tiny_recipe(package={"out_dir": str(dist)})
    sig = re.escape(f"{dest.name}.sig")
    with pytest.raises(
        OutputError, match=rf"{sig}: (cannot write|model-signing could not|is a folder)"
    ):
        build(recipe, cache_dir=cache_dir, reporter=SilentReporter(), sign_key=private,
              sign_format="model-signing")  # fmt: skip
    assert dest.read_bytes() == b"last week's package"  # not replaced by an unsigned package
    left = [dest.name, *([f"{dest.name}.sig"] if fault == "bundle-path-is-a-folder" else [])]
    assert sorted(p.name for p in dist.iterdir()) == left  # and no temporary name


def json_media_type(path: Path) -> str:
    import json

    return json.loads(path.read_text())["mediaType"]


def test_model_signing_with_an_ed25519_key_is_one_usage_line(tmp_path):
    private, _ = keygen(tmp_path / "k")
    # The key is checked before any step runs: nothing is built.
    out = _invoke(
        "build", "--cache-dir", str(tmp_path / "c"), "--sign", str(private),
        "--sign-format", "model-signing", "-q",
    )  # fmt: skip
    assert out.exit_code == 2
    (line,) = [ln for ln in out.output.splitlines() if ln.startswith("error:")]
    assert "needs an ECDSA P-256/P-384/P-521 key" in line and "--type ecdsa-p256" in line
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("artifact.json"))

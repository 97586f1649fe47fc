"""ed25519 package signatures (the `cryptography` library): keygen, sign, read keys.

`manifest.sig` in the package root is the raw 64-byte signature over the exact bytes of
manifest.json; the manifest lists every other file by sha256, so it covers the whole package.
Private keys are PEM PKCS8 (unencrypted, mode 0600), public keys PEM SubjectPublicKeyInfo.

Why signing happens at publish time, not in a stage: the stage cache is keyed by configs and
stored on disk, shareable between machines; a `sign` stage would need the private key (or its
path) in its config or its output, and the cache must never hold secret material. Ed25519 is
deterministic, so signing the cached, unsigned package while copying it to `out_dir` costs a
millisecond and gives the same bytes every time.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from packager.errors import InputFileError
from packager.files import atomic_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNATURE = "manifest.sig"
MANIFEST = "manifest.json"
DEFAULT_KEY = "edgepack.key"


def public_path(private: str | Path) -> Path:
    """Where keygen writes the public half of the key at `private`."""
    return Path(f"{private}.pub")


def keygen(path: str | Path = DEFAULT_KEY) -> tuple[Path, Path]:
    """Write a new private key to `path` (mode 0600) and its public key to `path.pub`.

    Refuses to overwrite either file: losing a signing key is not undoable.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private, public = Path(path), public_path(path)
    for p in (private, public):
        if p.exists():
            raise InputFileError(f"{p}: already exists; refusing to overwrite a key")
    if not private.parent.is_dir():
        raise InputFileError(f"{private.parent}: no such folder")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # O_EXCL: a file that appeared since the check is not overwritten; 0600 from the first byte.
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        fd = os.open(public, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        private.unlink()
        raise InputFileError(f"{public}: already exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pub)
    return private, public


def read_private_key(path: str | Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise InputFileError(f"--sign {p}: cannot read the key ({err.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        # TypeError: an encrypted key (edgepack keygen writes unencrypted PKCS8).
        raise InputFileError(
            f"--sign {p}: not an unencrypted PEM private key ({err}); make one with `edgepack keygen`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputFileError(f"--sign {p}: expected an ed25519 key, got {type(key).__name__}")
    return key


def read_public_key(path: str | Path) -> bytes:
    """The PEM bytes of the ed25519 public key at `path`, checked; InputFileError if not one."""
    from edgepack_runtime.signature import load_public_key

    try:
        data = Path(path).read_bytes()
        load_public_key(data)
    except OSError as err:
        raise InputFileError(f"--pubkey {path}: cannot read ({err.strerror})") from None
    except ValueError as err:
        raise InputFileError(f"--pubkey {path}: {err}") from None
    return data


def key_fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The same short key name the runtime prints, e.g. `ed25519:1a2b3c4d5e6f7a8b`."""
    from edgepack_runtime.signature import fingerprint

    public = key.public_key() if hasattr(key, "public_key") else key
    return fingerprint(public)


def publish_signed(src: Path, dest: Path, key_path: str | Path) -> Path:
    """Copy the package zip `src` to `dest` with `manifest.sig` added, never half-written.

    The signature is over manifest.json's bytes exactly as stored in the zip.
    """
    from packager.bundle import ZIP_TIME  # the timestamp of every entry: equal content, equal zip

    key = read_private_key(key_path)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        with zipfile.ZipFile(tmp, "a", zipfile.ZIP_DEFLATED) as zf:
            names = zf.namelist()
            if SIGNATURE in names:
                raise InputFileError(f"{src}: already signed")
            signature = key.sign(zf.read(MANIFEST))
            info = zipfile.ZipInfo(SIGNATURE, ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED  # 64 random bytes do not compress
            zf.writestr(info, signature)
    return dest

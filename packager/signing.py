"""Package signatures: ed25519 over manifest.json (the `cryptography` library; what the
edgepack runtimes check), or an OpenSSF model-signing bundle over the package file (the
`model-signing` library, key-based; what `model_signing verify` checks). Keygen, sign, read keys.

`manifest.sig` in the package root is the raw 64-byte signature over the exact bytes of
manifest.json; the manifest lists every other file by sha256, so it covers the whole package.
Private keys are PEM PKCS8 (unencrypted, mode 0600), public keys PEM SubjectPublicKeyInfo.

`--sign-format model-signing` writes `NAME.edgepack.sig` beside the package: a sigstore bundle
(DSSE envelope, in-toto statement) whose subject is the sha256 of the `.edgepack` file, signed
with an ECDSA P-256/P-384/P-521 key (the only key kind model-signing takes). It is detached
because every edgepack reader refuses a file in the package that the manifest does not list.
The two relate like this: manifest.sig covers the manifest, which covers every other file by
sha256 (a device checks it); the model-signing bundle covers the whole zip byte for byte,
manifest included (a reviewer's supply-chain tools check it).

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

from packager.errors import InputFileError, OutputError, one_line
from packager.files import atomic_path, check_name, publish_files, staging_folder

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


KEY_TYPES = ("ed25519", "ecdsa-p256")  # ed25519: manifest.sig; ecdsa-p256: model-signing
SIGN_FORMATS = {"ed25519": "ed25519", "model-signing": "ecdsa-p256"}  # format -> key it needs


def keygen(path: str | Path = DEFAULT_KEY, key_type: str = "ed25519") -> tuple[Path, Path]:
    """Write a new private key to `path` (mode 0600) and its public key to `path.pub`, both or
    neither (a full disk leaves no key, not even an empty one).

    Refuses to overwrite either file: losing a signing key is not undoable.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private, public = Path(path), public_path(path)
    check_name(public, "keygen")  # the longer of the two names
    for p in (private, public):
        if p.exists():
            raise InputFileError(f"{p}: already exists; refusing to overwrite a key")
    if not private.parent.is_dir():
        raise InputFileError(f"{private.parent}: no such folder")
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if key_type == "ecdsa-p256"
        else Ed25519PrivateKey.generate()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Made in a private folder (0600 from the first byte), then both published or neither:
    # never a key without its other half, never a half-written key, never one replaced.
    with staging_folder(private) as folder:
        made = [(folder / private.name, pem, 0o600), (folder / public.name, pub, 0o644)]
        for staged, data, mode in made:
            with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as f:
                f.write(data)
        publish_files([(made[0][0], private), (made[1][0], public)], move=True, exclusive=True)
    return private, public


def read_private_key(path: str | Path, sign_format: str = "ed25519"):
    """The private key at `path`, checked to be the kind `sign_format` signs with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from packager.edge_runtime import load_runtime, read_user_file

    p = Path(path)
    # A FIFO or device refused unopened, a file over 64 KiB unread: the runtime's own check.
    data = read_user_file(p, load_runtime().limits.MAX_PUBLIC_KEY_BYTES, f"--sign {p}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        # TypeError: an encrypted key (edgepack keygen writes unencrypted PKCS8).
        raise InputFileError(
            f"--sign {p}: not an unencrypted PEM private key ({err}); make one with `edgepack keygen`"
        ) from None
    if sign_format == "model-signing":
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _EC_CURVES:
            raise InputFileError(
                f"--sign {p}: --sign-format model-signing needs an ECDSA P-256/P-384/P-521 key, "
                f"got {type(key).__name__}; make one with `edgepack keygen --type ecdsa-p256`"
            )
        return key
    if not isinstance(key, Ed25519PrivateKey):
        raise InputFileError(
            f"--sign {p}: expected an ed25519 key, got {type(key).__name__} (an ECDSA key signs "
            "with --sign-format model-signing)"
        )
    return key


_EC_CURVES = ("secp256r1", "secp384r1", "secp521r1")


def read_public_key(path: str | Path) -> bytes:
    """The PEM bytes of the ed25519 public key at `path`, checked; InputFileError if not one: a
    FIFO or device is refused before it is opened (it would block `verify --pubkey` forever),
    a file over 64 KiB unread (the runtime's own check)."""
    from edgepack_runtime.signature import load_public_key

    from packager.edge_runtime import load_runtime, read_user_file

    cap = load_runtime().limits.MAX_PUBLIC_KEY_BYTES
    data = read_user_file(path, cap, f"--pubkey {path}")
    try:
        load_public_key(data)
    except ValueError as err:
        raise InputFileError(f"--pubkey {path}: {err}") from None
    return data


def key_fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The same short key name the runtime prints, e.g. `ed25519:1a2b3c4d5e6f7a8b`."""
    from edgepack_runtime.signature import fingerprint

    public = key.public_key() if hasattr(key, "public_key") else key
    return fingerprint(public)


def publish_model_signed(src: Path, dest: Path, key_path: str | Path) -> Path:
    """Publish the package zip `src` to `dest` and its OpenSSF model-signing bundle to
    `dest.sig` (key-based); `model_signing verify key --signature dest.sig --public_key KEY.pub
    dest` accepts it. Both are published or neither, and a failure leaves `dest` as it was."""
    try:
        import model_signing
    except ImportError as err:
        raise InputFileError(
            f"--sign-format model-signing needs the model-signing library ({err.name} is "
            "missing): pip install 'edgepack[model-signing]'"
        ) from None
    read_private_key(key_path, "model-signing")
    sig = Path(f"{dest}.sig")
    # Signed under its own name (the bundle records it) in a folder beside `dest`, then the
    # package and its bundle renamed into place together.
    with staging_folder(dest) as folder:
        staged = folder / dest.name
        shutil.copyfile(src, staged)
        config = model_signing.signing.Config().use_elliptic_key_signer(private_key=key_path)
        try:
            config.sign(staged, folder / sig.name)
        except OSError:
            raise  # a full or read-only disk: staging_folder names the output
        except Exception as err:  # the library's own failure: one line, not its traceback
            raise OutputError(
                f"{sig}: model-signing could not sign {dest.name} ({one_line(err)})"
            ) from None
        publish_files([(staged, dest), (folder / sig.name, sig)], move=True)
    return dest


def publish_signed(src: Path, dest: Path, key_path: str | Path) -> Path:
    """Copy the package zip `src` to `dest` with `manifest.sig` added, never half-written.

    The signature is over manifest.json's bytes exactly as stored in the zip.
    """
    from packager.package import ZIP_TIME  # the timestamp of every entry: equal content, equal zip

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

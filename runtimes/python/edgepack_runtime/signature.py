"""ed25519 signatures: `manifest.sig` holds the raw 64-byte signature over manifest.json's bytes.

The manifest lists every other file with its sha256, so one signature over it covers the whole
package. `cryptography` is imported lazily: only apps that verify signatures need it
(`pip install 'edgepack-runtime[sign]'`).
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from ._source import MANIFEST, Source, read_regular
from .errors import SignatureError, UnsupportedPackageError
from .limits import MAX_PUBLIC_KEY_BYTES

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE = "manifest.sig"
SIGNATURE_BYTES = 64

PublicKeyLike = str | os.PathLike[str] | bytes


def _serialization():
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:
        raise UnsupportedPackageError(
            "verifying signatures needs the cryptography package: "
            "pip install 'edgepack-runtime[sign]'"
        ) from exc
    return serialization


def load_public_key(pubkey: PublicKeyLike) -> Ed25519PublicKey:
    """An ed25519 public key from a PEM (SubjectPublicKeyInfo) file path or PEM bytes.

    A key that cannot be read is a bad option value: ValueError, like a bad thread count.
    """
    serialization = _serialization()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    label = "public key (bytes)" if isinstance(pubkey, bytes) else f"public key {pubkey}"
    if isinstance(pubkey, bytes):
        pem = pubkey
    else:
        try:
            # A FIFO or device: refused, not waited on. A PEM public key is a few hundred bytes:
            # a larger file is refused unread.
            pem = read_regular(pubkey, MAX_PUBLIC_KEY_BYTES)
        except OSError as exc:
            raise ValueError(f"{label}: cannot read ({exc.strerror})") from exc
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"{label}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{label}: expected an ed25519 key, got {type(key).__name__}")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the first 16 hex digits of sha256 of its raw 32 bytes."""
    serialization = _serialization()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def require_signature(source: Source) -> None:
    """SignatureError unless the package has a manifest.sig and a manifest.json to check it on
    (a key was given: an unsigned package is refused, not loaded unchecked)."""
    names = source.names()
    if SIGNATURE not in names:
        raise SignatureError(
            f"{source.label}: the package is not signed (no {SIGNATURE}) but a public key was given"
        )
    if MANIFEST not in names:
        raise SignatureError(f"{source.label}: no {MANIFEST} to check the signature against")


def verify_signature(source: Source, manifest_bytes: bytes, key: Ed25519PublicKey) -> None:
    """Raise SignatureError unless manifest.sig is a valid signature of `manifest_bytes` by `key`.

    `manifest_bytes` are the bytes the caller then parses (read once): an attacker's manifest is
    never parsed, and a manifest swapped after the check is not the one that is used.
    """
    from cryptography.exceptions import InvalidSignature

    require_signature(source)
    size = source.size(SIGNATURE)
    if size != SIGNATURE_BYTES:
        raise SignatureError(
            f"{SIGNATURE}: expected a {SIGNATURE_BYTES}-byte ed25519 signature, got {size} bytes"
        )
    try:
        key.verify(source.read(SIGNATURE, size), manifest_bytes)
    except InvalidSignature:
        raise SignatureError(
            f"{SIGNATURE}: signature does not match public key {fingerprint(key)}: "
            f"{MANIFEST} was modified after signing, or signed with another key"
        ) from None

"""open_package(): a package's files, checked against its manifest, without loading the model.

What `load()` builds on, and what tools use to read a package safely: `inspect`, benchmarks on a
package's own model, and unpacking a `.edgepack` for the C++ runtime (which reads folders) with
`extract_to` instead of `zipfile.extractall` (which lets the last of two same-named members win,
and writes whatever a member claims to be).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._source import MANIFEST, Source, open_source
from .errors import IntegrityError, InvalidPackageError
from .limits import MAX_SIGNATURE_BYTES
from .manifest import check_listing, parse_manifest, read_manifest_bytes
from .signature import (
    SIGNATURE,
    PublicKeyLike,
    fingerprint,
    load_public_key,
    require_signature,
    verify_signature,
)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | _NOFOLLOW


class PackageReader:
    """A package opened by `open_package`: its manifest, and its files read verified.

    Every read streams the file, checks its size against the manifest as it goes (nothing is
    read past it) and its sha256 at the end; a mismatch is an IntegrityError naming the file.
    Use it as a context manager, or call close(): a zip stays open until then.
    """

    def __init__(
        self, source: Source, manifest: dict[str, Any], manifest_bytes: bytes, signature: str
    ) -> None:
        self.path = Path(source.label)
        self.manifest = manifest
        self.manifest_bytes = manifest_bytes  # the exact bytes parsed (and signature-checked)
        # "verified by ed25519:<fingerprint>", "not checked" (signed, no key given) or "unsigned"
        self.signature = signature
        self._source = source

    def __enter__(self) -> PackageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()

    def names(self) -> list[str]:
        """The package's files as the manifest lists them, sorted (manifest.json not included)."""
        return sorted(self.manifest["files"])

    def size(self, name: str) -> int:
        return int(self._entry(name)["size"])

    def read(self, name: str) -> bytes:
        """A listed file's bytes (or manifest.json's), verified against the manifest."""
        if name == MANIFEST:
            return self.manifest_bytes
        return b"".join(self._verified(name))

    def verify_files(self, keep: Iterable[str] = ()) -> dict[str, bytes]:
        """Check every listed file's sha256 (each read once, streamed); return the bytes of the
        files in `keep`, so the bytes an app uses are the bytes that were checked."""
        keep = set(keep)
        kept: dict[str, bytes] = {}
        for name in self.names():
            if name in keep:
                kept[name] = b"".join(self._verified(name))
            else:
                for _ in self._verified(name):  # hashed and dropped: never all in memory
                    pass
        return kept

    def local_path(self, name: str) -> Path | None:
        """The file of a folder package on disk (None in a zip): onnxruntime can load a large
        model from it without a second copy in Python's memory; `verify(name)` after the load
        checks it is still the file that was verified."""
        self._entry(name)
        return self._source.local_path(name)

    def verify(self, name: str) -> None:
        """Check one file's sha256 again (streamed)."""
        for _ in self._verified(name):
            pass

    def extract_to(self, folder: str | os.PathLike[str]) -> Path:
        """Write the package as a folder: manifest.json (the exact bytes read), manifest.sig when
        present, and every listed file, each verified as it is written.

        `folder` must be empty or not exist. Only regular files are created (O_EXCL, never
        following a link), only under `folder`; on any error what was written is removed again
        and the error raised. Returns the folder.
        """
        dest = Path(folder)
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{dest}: cannot create the folder ({exc})") from exc
        if any(dest.iterdir()):
            raise ValueError(f"{dest}: extract_to needs an empty or new folder")
        created: list[Path] = []
        try:
            self._write(dest, MANIFEST, [self.manifest_bytes], created)
            if SIGNATURE in self._source.names():
                self._write(dest, SIGNATURE, [self._signature_bytes()], created)
            for name in self.names():
                self._write(dest, name, self._verified(name), created)
        except BaseException:
            for path in reversed(created):
                with contextlib.suppress(OSError):
                    path.rmdir() if path.is_dir() else path.unlink()
            raise
        return dest

    def _entry(self, name: str) -> dict[str, Any]:
        entry = self.manifest["files"].get(name)
        if entry is None:
            raise InvalidPackageError(f"{name}: not a file of this package")
        return entry

    def _verified(self, name: str) -> Iterator[bytes]:
        """The file's chunks; IntegrityError after the last one if its sha256 differs."""
        entry = self._entry(name)
        sha = hashlib.sha256()
        for chunk in self._source.chunks(name, int(entry["size"])):  # JSON may say 7.0
            sha.update(chunk)
            yield chunk
        digest = sha.hexdigest()
        if digest != entry["sha256"]:
            raise IntegrityError(
                f"{name}: sha256 mismatch (expected {entry['sha256'][:12]}…, got {digest[:12]}…): "
                "the package was modified after it was built"
            )

    def _signature_bytes(self) -> bytes:
        size = self._source.size(SIGNATURE)
        if size > MAX_SIGNATURE_BYTES:
            raise InvalidPackageError(f"{SIGNATURE}: {size} bytes, larger than a signature can be")
        return self._source.read(SIGNATURE, size)

    @staticmethod
    def _write(dest: Path, name: str, chunks: Iterable[bytes], created: list[Path]) -> None:
        path = dest.joinpath(*name.split("/"))
        for parent in reversed(path.relative_to(dest).parents[:-1]):
            folder = dest / parent
            if not folder.is_dir() or folder.is_symlink():
                try:
                    folder.mkdir()
                except OSError as exc:  # "a" and "a/b" both listed, or a case-insensitive clash
                    raise InvalidPackageError(f"{name}: cannot create {parent} ({exc})") from exc
                created.append(folder)
        try:
            fd = os.open(path, _WRITE_FLAGS, 0o644)
        except OSError as exc:
            raise InvalidPackageError(f"{name}: cannot create it in {dest} ({exc})") from exc
        created.append(path)
        with open(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)


def open_package(
    path: str | os.PathLike[str], pubkey: PublicKeyLike | None = None
) -> PackageReader:
    """Open a `.edgepack` zip or package folder and check everything but the file hashes.

    In order: with `pubkey` (a PEM public key file or PEM bytes), manifest.sig must be a valid
    signature of manifest.json's bytes (SignatureError otherwise) before they are parsed; the
    container holds only regular files with safe, unique names (no symlink, FIFO, `..` or
    duplicate member); manifest.json is within the caps (limits.py) and matches the schema; the
    package holds exactly the listed files, each of its manifest size. The sha256 of each file
    is checked when it is read (`read`, `verify_files`, `extract_to`). Raises
    EdgepackRuntimeError subclasses; a bad key file is a ValueError.
    """
    key = load_public_key(pubkey) if pubkey is not None else None
    source = open_source(path)
    try:
        if key is not None:
            require_signature(source)
        manifest_bytes = read_manifest_bytes(source)
        if key is not None:
            verify_signature(source, manifest_bytes, key)
            signature = f"verified by {fingerprint(key)}"
        else:
            signature = "not checked" if SIGNATURE in source.names() else "unsigned"
        manifest = parse_manifest(manifest_bytes)
        check_listing(source, manifest)
    except BaseException:
        source.close()
        raise
    return PackageReader(source, manifest, manifest_bytes, signature)

"""Read the files of a package, whether it is a `.edgepack` zip or a folder with the same tree.

Nothing is extracted to disk: members are streamed from the zip, so a hostile member name can
never write outside a temp dir, and the bytes that are hashed are the bytes that are used.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .errors import IntegrityError, InvalidPackageError

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def check_member_name(name: str, where: str) -> str:
    """Return `name` if it is a plain relative posix path, else raise InvalidPackageError."""
    path = PurePosixPath(name)
    bad = (
        not name
        or "\\" in name
        or path.is_absolute()
        or ":" in path.parts[0]  # "C:/..." is absolute on Windows even without a leading slash
        or any(part in ("..", ".") for part in path.parts)
        or str(path) != name.rstrip("/")  # "a//b" and friends: one file, one spelling
    )
    if bad:
        raise InvalidPackageError(f"{where}: unsafe file name {name!r} (must be a relative path)")
    return name


class Source:
    """The files of a package: names, sizes and streamed contents."""

    label: str

    def names(self) -> set[str]:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def chunks(self, name: str) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def digest(self, name: str, keep: bool) -> tuple[str, bytes | None]:
        """sha256 of a file, and its bytes when `keep` (hashed in the same pass, read once)."""
        sha = hashlib.sha256()
        parts: list[bytes] = []
        for chunk in self.chunks(name):
            sha.update(chunk)
            if keep:
                parts.append(chunk)
        return sha.hexdigest(), b"".join(parts) if keep else None

    def close(self) -> None:
        pass


class _ZipSource(Source):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InvalidPackageError(f"{path}: not a readable zip ({exc})") from exc
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            check_member_name(info.filename, self.label)
            if info.is_dir():
                continue
            if info.filename in self._infos:
                # Two members with one name: which one a reader sees is up to the reader.
                raise InvalidPackageError(f"{path}: duplicate zip member {info.filename!r}")
            self._infos[info.filename] = info

    def names(self) -> set[str]:
        return set(self._infos)

    def size(self, name: str) -> int:
        return self._infos[name].file_size

    def chunks(self, name: str) -> Iterator[bytes]:
        try:
            with self._zip.open(self._infos[name]) as member:
                while chunk := member.read(_CHUNK):
                    yield chunk
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            # A bad CRC or an encrypted member: the file is not the one that was packaged.
            raise IntegrityError(f"{name}: cannot read zip member ({exc})") from exc

    def close(self) -> None:
        self._zip.close()


class _FolderSource(Source):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        self._root = path
        self._names: set[str] = set()
        for dirpath, _, filenames in os.walk(path):
            rel = Path(dirpath).relative_to(path)
            self._names.update((rel / f).as_posix() for f in filenames)

    def names(self) -> set[str]:
        return set(self._names)

    def size(self, name: str) -> int:
        return (self._root / name).stat().st_size

    def chunks(self, name: str) -> Iterator[bytes]:
        try:
            with open(self._root / name, "rb") as f:
                while chunk := f.read(_CHUNK):
                    yield chunk
        except OSError as exc:
            raise IntegrityError(f"{name}: cannot read ({exc})") from exc


def open_source(path: str | os.PathLike[str]) -> Source:
    """Open a `.edgepack` zip or a package folder; anything else is an InvalidPackageError."""
    p = Path(path)
    if p.is_dir():
        return _FolderSource(p)
    if p.is_file() and zipfile.is_zipfile(p):
        return _ZipSource(p)
    if not p.exists():
        raise InvalidPackageError(f"{p}: no such file or folder")
    raise InvalidPackageError(
        f"{p}: not an edgepack package (expected a .edgepack zip or a folder)"
    )

"""Read the files of a package, whether it is a `.edgepack` zip or a folder with the same tree.

Only regular files are ever read. Symlinks (a zip member whose mode says S_IFLNK, or a link
anywhere in a folder), FIFOs, sockets and devices are refused when the package is opened, and a
folder's files are opened one path component at a time without following links, so a read can
neither leave the package root nor block. Every read is bounded by the size the caller expects
(the manifest's): a zip bomb or a file that grows is refused after at most that many bytes.
Nothing is extracted to disk here (reader.PackageReader.extract_to does that, verified).
"""

from __future__ import annotations

import errno
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import IntegrityError, InvalidPackageError

MANIFEST = "manifest.json"
_CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# O_NONBLOCK: opening a FIFO returns at once (then fstat refuses it) instead of waiting forever.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | _NOFOLLOW
_ONLY_REGULAR = "a package holds only regular files: copy the file itself in"


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


def size_mismatch(name: str, expected: int, got: int) -> IntegrityError:
    return IntegrityError(
        f"{name}: size mismatch (expected {expected} bytes, got {got}): "
        "the package was modified after it was built"
    )


def max_compressed_size(size: int) -> int:
    """The most compressed bytes a `size`-byte member can take: deflate, bzip2 and lzma never
    grow data by more than a fraction of a percent, so a member far above this has a header
    that understates what it inflates to (a zip bomb's trick). Shared with the JS runtime."""
    return size + size // 8 + 1024


class Source:
    """The regular files of a package: names, sizes, and contents streamed to a known size."""

    label: str

    def names(self) -> set[str]:
        raise NotImplementedError

    def size(self, name: str) -> int:
        """The size the container records (zip header, or lstat), known before any read."""
        raise NotImplementedError

    def _raw_chunks(self, name: str, size: int) -> Iterator[bytes]:
        raise NotImplementedError

    def chunks(self, name: str, size: int) -> Iterator[bytes]:
        """Stream exactly `size` bytes of `name`: IntegrityError as soon as it holds more (so a
        lying header or a growing file costs at most `size` bytes), or at the end if fewer."""
        if self.size(name) != size:
            raise size_mismatch(name, size, self.size(name))
        got = 0
        for chunk in self._raw_chunks(name, size):
            got += len(chunk)
            if got > size:
                raise size_mismatch(name, size, got)
            yield chunk
        if got != size:
            raise size_mismatch(name, size, got)

    def local_path(self, name: str) -> Path | None:
        """Where the member is on disk as a file of its own (a folder's), else None (a zip's)."""
        return None

    def read(self, name: str, size: int) -> bytes:
        return b"".join(self.chunks(name, size))

    def close(self) -> None:
        pass


def _zip_member_kind(info: zipfile.ZipInfo, label: str) -> str:
    """Whether a member is a "file" or a "dir"; InvalidPackageError for a symlink or any other
    non-regular member (a FIFO or device a writer recorded in the unix mode)."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # unix mode; 0 when the writer recorded none
    if kind == stat.S_IFLNK:
        raise InvalidPackageError(
            f"{label}: zip member {info.filename!r} is a symlink; {_ONLY_REGULAR}"
        )
    if info.filename.endswith("/") and kind in (0, stat.S_IFDIR):
        return "dir"
    if kind not in (0, stat.S_IFREG):
        raise InvalidPackageError(
            f"{label}: zip member {info.filename!r} is not a regular file (mode {kind:o}); "
            f"{_ONLY_REGULAR}"
        )
    return "file"


class _ZipSource(Source):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InvalidPackageError(f"{path}: not a readable zip ({exc})") from exc
        self._infos: dict[str, zipfile.ZipInfo] = {}
        try:
            for info in self._zip.infolist():
                self._add(info)
        except BaseException:
            self._zip.close()
            raise

    def _add(self, info: zipfile.ZipInfo) -> None:
        name = check_member_name(info.filename, self.label)
        if _zip_member_kind(info, self.label) == "dir":
            return
        if name in self._infos:
            # Two members with one name: which one a reader sees is up to the reader.
            raise InvalidPackageError(f"{self.label}: duplicate zip member {name!r}")
        if info.flag_bits & 0x1:
            raise InvalidPackageError(f"{self.label}: zip member {name!r} is encrypted")
        if info.compress_size > max_compressed_size(info.file_size):
            raise IntegrityError(
                f"{name}: the zip header says {info.file_size} bytes but the member holds "
                f"{info.compress_size} compressed bytes: the zip was altered"
            )
        self._infos[name] = info

    def names(self) -> set[str]:
        return set(self._infos)

    def size(self, name: str) -> int:
        return self._infos[name].file_size

    def _raw_chunks(self, name: str, size: int) -> Iterator[bytes]:
        try:
            # zipfile never inflates past the header's file_size, which chunks() checked.
            with self._zip.open(self._infos[name]) as member:
                while chunk := member.read(_CHUNK):
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as exc:
            # A bad CRC, corrupt deflate data, an unknown method (NotImplementedError is a
            # RuntimeError): not the file that was packaged.
            raise IntegrityError(f"{name}: cannot read zip member ({exc})") from exc

    def close(self) -> None:
        self._zip.close()


def _open_inside(root: Path, name: str) -> int:
    """A read-only fd for root/name, opened one component at a time with O_NOFOLLOW, so the path
    cannot resolve outside root even if a folder is swapped for a link after the listing."""
    parts = name.split("/")
    if not _NOFOLLOW or os.open not in os.supports_dir_fd:
        return os.open(os.path.join(root, *parts), _READ_FLAGS)  # no openat: the listing checked
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        return os.open(parts[-1], _READ_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


class _FolderSource(Source):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        self._root = path
        self._sizes: dict[str, int] = {}
        pending = [""]  # an explicit stack: a folder nested thousands deep cannot recurse us
        while pending:
            rel = pending.pop()
            try:
                with os.scandir(path / rel) as entries:
                    found = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
            except OSError as exc:
                raise InvalidPackageError(f"{path}: cannot list {rel or '.'} ({exc})") from exc
            for base, st in found:
                name = f"{rel}/{base}" if rel else base
                if stat.S_ISDIR(st.st_mode):
                    pending.append(name)
                elif stat.S_ISREG(st.st_mode):
                    self._sizes[name] = st.st_size
                else:
                    raise _not_regular(name, st.st_mode)

    def names(self) -> set[str]:
        return set(self._sizes)

    def size(self, name: str) -> int:
        return self._sizes[name]

    def local_path(self, name: str) -> Path | None:
        return self._root / name if name in self._sizes else None

    def _raw_chunks(self, name: str, size: int) -> Iterator[bytes]:
        try:
            fd = _open_inside(self._root, name)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise InvalidPackageError(
                    f"{name}: is a symlink or under one; {_ONLY_REGULAR}"
                ) from exc
            raise IntegrityError(f"{name}: cannot read ({exc.strerror})") from exc
        with open(fd, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(name, st.st_mode)  # swapped since the listing
            if st.st_size != size:
                raise size_mismatch(name, size, st.st_size)  # changed since the listing
            left = size + 1  # one byte more than expected: enough to notice a file that grew
            try:
                while left > 0 and (chunk := f.read(min(_CHUNK, left))):
                    left -= len(chunk)
                    yield chunk
            except OSError as exc:
                raise IntegrityError(f"{name}: cannot read ({exc.strerror})") from exc


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file a user or app names (an input, an image, a key) for reading, refusing anything
    but a regular file before it is opened: opening a FIFO that has no writer waits forever, and
    a device can stream without end. Then opened O_NONBLOCK and checked again with fstat, so a
    path swapped for a FIFO in between cannot block either. OSError when refused or unreadable
    (its strerror says which: "a FIFO, not a regular file")."""
    mode = os.stat(path).st_mode  # follows links: a link to a regular file is that file
    if stat.S_ISREG(mode):
        fd = os.open(path, _READ_FLAGS & ~_NOFOLLOW)
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            os.close(fd)
            raise
        if stat.S_ISREG(mode):
            return os.fdopen(fd, "rb")
        os.close(fd)
    raise OSError(errno.EINVAL, f"{_file_kind(mode)}, not a regular file", str(path))


def _not_regular(name: str, mode: int) -> InvalidPackageError:
    if stat.S_ISLNK(mode):
        return InvalidPackageError(f"{name}: is a symlink; {_ONLY_REGULAR}")
    return InvalidPackageError(
        f"{name}: not a regular file (a FIFO, socket or device); {_ONLY_REGULAR}"
    )


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

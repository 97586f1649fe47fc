"""Hostile packages built by hand, for tests/runtimes/ and tests/reliability/: zips that say what
zipfile refuses to write (duplicate names, symlinks, sizes and CRCs that lie, members that
inflate a thousandfold) and .npy files with any header.

A member's data is given whole (`data`) or as a stream (`chunks`, e.g. a gigabyte of zeros), so
a 1 GiB member costs the test its deflated size in memory, not a gigabyte.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes = b""
    mode: int = 0o100644  # unix mode in the zip's external attributes (S_IFLNK: a symlink)
    declared: int | None = None  # uncompressed size the headers claim (default: the truth)
    crc: int | None = None  # the CRC-32 the headers claim (default: the truth)
    stored: bool = False  # method 0 (stored) instead of deflate


@dataclass
class Deflated:
    """A member's bytes deflated as they stream by, with what a manifest and a zip record."""

    body: bytes
    size: int
    crc: int
    sha256: str
    head: bytes = field(default=b"", repr=False)  # the first bytes, uncompressed


def deflate(chunks: Iterable[bytes], level: int = 9) -> Deflated:
    """Each chunk deflated on its own (a full flush after it), so a chunk that repeats (the same
    object again, as `zeros` yields) reuses its deflated bytes: a gigabyte of zeros deflates in
    the time of one 16 MiB chunk, to about 1 MB."""
    packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    sha, crc, size, body, head = hashlib.sha256(), 0, 0, bytearray(), b""
    last: tuple[bytes, bytes] | None = None
    for chunk in chunks:
        if len(head) < 4096:
            head += chunk[: 4096 - len(head)]
        sha.update(chunk)
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        if last is None or last[0] is not chunk:
            last = (chunk, packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH))
        body += last[1]
    body += packer.flush()
    return Deflated(bytes(body), size, crc, sha.hexdigest(), head)


def zeros(n: int, chunk: int = 16 << 20) -> Iterable[bytes]:
    block = bytes(chunk)
    while n > 0:
        yield block[: min(chunk, n)]
        n -= chunk


def npy_header(shape: tuple[int, ...], descr: str = "<f4", fortran: bool = False) -> bytes:
    """A format 1.0 .npy header as numpy writes it (padded to 64 bytes), for any shape."""
    dims = f"{shape[0]}," if len(shape) == 1 else ", ".join(map(str, shape))
    text = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': ({dims}), }}"
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def raw_zip(path: Path, members: list[Member | tuple[str, Deflated]]) -> Path:
    """A zip written by hand: each Member deflated (or stored) here, or a (name, Deflated)."""
    out, central = bytearray(), bytearray()
    for m in members:
        if isinstance(m, tuple):
            name_text, d = m
            m = Member(name_text)
            method, body, size, crc = 8, d.body, d.size, d.crc
        elif m.stored:
            method, body, size, crc = 0, m.data, len(m.data), zlib.crc32(m.data)
        else:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            method, body = 8, packer.compress(m.data) + packer.flush()
            size, crc = len(m.data), zlib.crc32(m.data)
        size = size if m.declared is None else m.declared
        crc = crc if m.crc is None else m.crc
        name, offset = m.name.encode(), len(out)
        fields = (method, 0, 0x21, crc, len(body), size, len(name))  # method, time, date, ...
        out += struct.pack("<IHH HHHIIIHH", 0x04034B50, 20, 0, *fields, 0) + name + body
        central += struct.pack(
            "<IHHH HHHIIIHHHHHII",
            0x02014B50,
            0x314,
            20,
            0,
            *fields,
            0,
            0,
            0,
            0,
            m.mode << 16,
            offset,
        )
        central += name
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path

""".npy files, read header first: the one reader of every array the runtime takes from a package
or a user (the JS and C++ runtimes check the same things, in the same order).

The header is parsed (numpy's own safe parser, capped at MAX_NPY_HEADER_BYTES) and checked
before a byte of data is read: numbers and bools only, little-endian, C order, no negative dim,
and exactly as many data bytes as the shape says. So a header that claims terabytes, an object
or string array, or a file cut short is one error naming the file, never a MemoryError, a
traceback or an array read into memory to be refused afterwards.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

import numpy as np

from ._source import read_regular
from .errors import EdgepackRuntimeError, InputError
from .limits import MAX_INPUT_BYTES, MAX_NPY_HEADER_BYTES

# The most bytes before an .npy's data: magic (6), version (2), length (4), header.
HEAD_BYTES = 12 + MAX_NPY_HEADER_BYTES
# The dtype kinds an array of numbers may have: bool, signed and unsigned ints, floats.
NUMBER_KINDS = "biuf"


@dataclass(frozen=True)
class NpyHeader:
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int  # where the data starts

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def dtype_refusal(dtype: np.dtype) -> str | None:
    """Why an array of this dtype is not an array of numbers (None when it is)."""
    if dtype.kind in NUMBER_KINDS and dtype.fields is None and not dtype.subdtype:
        return None
    kinds = {"M": "datetime", "m": "timedelta", "U": "string", "S": "bytes", "O": "object"}
    what = kinds.get(dtype.kind, "complex" if dtype.kind == "c" else "structured or void")
    return f"{what} arrays ({dtype.str}) are not numbers: pass bool, int or float arrays"


def parse_header(head: bytes, where: str, error: type[EdgepackRuntimeError]) -> NpyHeader:
    """The header at the start of `head` (at least its first HEAD_BYTES bytes, or the file)."""

    def bad(why: str) -> EdgepackRuntimeError:
        return error(f"{where}: not a readable .npy array ({why})")

    f = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(f)
    except ValueError as exc:
        raise bad("bad magic: not an .npy file") from exc
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise bad(f"unknown format version {version[0]}.{version[1]}")
    width = 2 if version == (1, 0) else 4
    length = int.from_bytes(head[8 : 8 + width], "little")
    if length > MAX_NPY_HEADER_BYTES:
        raise bad(f"a {length}-byte header, over the {MAX_NPY_HEADER_BYTES}-byte cap")
    if len(head) < 8 + width + length:
        raise bad("truncated header")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else _header_2_0
    try:
        shape, fortran, dtype = read(f, max_header_size=MAX_NPY_HEADER_BYTES)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
        raise bad(f"unparsable header: {' '.join(str(exc).split())[:200]}") from exc
    refusal = dtype_refusal(dtype)
    if refusal is not None:
        raise error(f"{where}: {refusal}")
    if dtype.byteorder == ">":
        raise bad("big-endian arrays are not supported")
    if fortran:
        raise bad("Fortran-order arrays are not supported (save a C-order array)")
    if any(d < 0 for d in shape):
        raise bad(f"negative dimension in shape {shape}")
    return NpyHeader(dtype, tuple(shape), 8 + width + length)


def _header_2_0(f: io.BytesIO, max_header_size: int):
    # 3.0 differs from 2.0 only in the header's encoding (UTF-8, for structured field names,
    # which are refused anyway): a header of numbers is ASCII in both.
    return np.lib.format.read_array_header_2_0(f, max_header_size=max_header_size)


def check_data_size(header: NpyHeader, size: int, where: str, error) -> None:
    """The data after the header must be exactly what the shape says: no more, no less."""
    have = size - header.offset
    if have != header.data_bytes:
        raise error(
            f"{where}: not a readable .npy array (shape {header.shape} of {header.dtype} needs "
            f"{header.data_bytes} data bytes, the file holds {have})"
        )


def load_npy(data: bytes, where: str, error: type[EdgepackRuntimeError] = InputError) -> np.ndarray:
    """An array of numbers from .npy bytes, every check made before the data is touched."""
    header = parse_header(data[:HEAD_BYTES], where, error)
    check_data_size(header, len(data), where, error)
    array = np.frombuffer(data, header.dtype, math.prod(header.shape), header.offset)
    return array.reshape(header.shape).copy()  # writable, and the file's bytes can go


def read_npy_file(path: str | os.PathLike[str]) -> np.ndarray:
    """A user's .npy file: a regular file within MAX_INPUT_BYTES (InputError otherwise)."""
    try:
        data = read_regular(path, MAX_INPUT_BYTES)
    except OSError as exc:
        raise InputError(f"{path}: cannot read a .npy array ({exc.strerror})") from exc
    return load_npy(data, str(path))

"""Calibration and evaluation data, streamed from files in batches with a sample cap.

A `Source` yields `(feeds, labels)` batches: feeds map model input names to arrays of the
model's dtypes; labels are an int array when the file has them, else None. Files are never
loaded whole: `.npy` is memory-mapped, `.npz` members are read row block by row block from
the zip stream, `.jsonl` and `.txt` line by line; reading stops at the cap.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from packager.data.text import SUFFIXES as TEXT_SUFFIXES
from packager.data.text import load_tokenizer, read_rows
from packager.errors import InputFileError

Batch = tuple[dict[str, np.ndarray], "np.ndarray | None"]

_LABEL_KEYS = ("y", "label", "labels", "targets")
_SINGLE_KEYS = ("x", "X", "input", "inputs")
_TEXT_KEYS = ("text", "sentence")
ARRAY_SUFFIXES = (".npz", ".npy")
# Arrays, or rows of the text formats the data stage reads too (packager.data.text.read_rows).
SUFFIXES = ARRAY_SUFFIXES + TEXT_SUFFIXES


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: str
    shape: tuple[Any, ...]


def model_inputs(model: Path) -> list[InputSpec]:
    from packager.onnx_utils import io_spec

    return [InputSpec(i["name"], i["dtype"], tuple(i["shape"])) for i in io_spec(model)["inputs"]]


class Source:
    """Batches of feeds (and labels) for a model, read lazily; `batches()` can be called again."""

    def __init__(self, inputs: list[InputSpec], batch: int, limit: int):
        self.inputs, self.batch, self.limit = inputs, batch, limit

    def _rows(self) -> Iterator[Batch]:  # batches of any size; capped and re-cut by batches()
        raise NotImplementedError

    def batches(self) -> Iterator[Batch]:
        left = self.limit
        for feeds, labels in self._rows():
            n = min(len(next(iter(feeds.values()))), left)
            if n <= 0:
                break
            yield (
                {k: self._conform(k, v[:n]) for k, v in feeds.items()},
                None if labels is None else np.asarray(labels[:n]).astype(np.int64),
            )
            left -= n

    def _conform(self, name: str, x: np.ndarray) -> np.ndarray:
        spec = next(s for s in self.inputs if s.name == name)
        x = np.asarray(x).astype(spec.dtype, copy=False)
        sample = spec.shape[1:]
        if all(isinstance(d, int) for d in sample) and x.shape[1:] != tuple(sample):
            if int(np.prod(x.shape[1:])) != int(np.prod(sample)):
                raise InputFileError(
                    f"{self}: input {name} has samples of shape {list(x.shape[1:])}, the model "
                    f"expects {list(sample)}"
                )
            x = x.reshape((len(x), *sample))  # e.g. flat 64 pixels into (1, 8, 8)
        return np.ascontiguousarray(x)


class ArraySource(Source):
    """In-memory arrays (the recipe's own splits)."""

    def __init__(self, inputs, feeds: dict[str, np.ndarray], labels, batch: int, limit: int):
        super().__init__(inputs, batch, limit)
        self.feeds, self.labels = feeds, labels

    def _rows(self) -> Iterator[Batch]:
        n = len(next(iter(self.feeds.values())))
        for i in range(0, n, self.batch):
            lab = None if self.labels is None else self.labels[i : i + self.batch]
            yield {k: v[i : i + self.batch] for k, v in self.feeds.items()}, lab

    def __str__(self) -> str:
        return "recipe data"


class FileSource(Source):
    """One of the supported files; the reader is chosen by suffix."""

    def __init__(self, path, inputs, batch: int, limit: int, tokenizer=None, max_length=128):
        super().__init__(inputs, batch, limit)
        self.path = Path(path)
        self.tokenizer, self.max_length = tokenizer, max_length
        if not self.path.is_file():
            raise InputFileError(f"{path}: file not found")
        if self.path.suffix not in SUFFIXES:
            raise InputFileError(
                f"{path}: unsupported data file {self.path.suffix!r} (use {', '.join(SUFFIXES)})"
            )
        if self.path.suffix in (".txt", ".csv", ".parquet") and tokenizer is None:
            raise InputFileError(f"{path}: text data needs a tokenizer (--tokenizer / tokenizer)")

    def __str__(self) -> str:
        return str(self.path)

    def _rows(self) -> Iterator[Batch]:
        try:
            if self.path.suffix == ".npy":
                yield from self._npy()
            elif self.path.suffix == ".npz":
                yield from self._npz()
            else:
                yield from self._text_rows()
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise InputFileError(f"{self.path}: cannot read ({err})") from None

    def _text_rows(self) -> Iterator[Batch]:
        for rows in read_rows(self.path, self.batch, objects=False):
            if self.path.suffix == ".txt":  # one text a line; blank lines are not examples
                rows = [r for r in rows if r["text"].strip()]
            if rows:
                yield self._json_batch(rows)

    def _single(self, what: str) -> str:
        if len(self.inputs) != 1:
            names = ", ".join(s.name for s in self.inputs)
            raise InputFileError(
                f"{self.path}: {what} holds one input but the model has {len(self.inputs)} "
                f"({names}); use .npz or .jsonl with one entry per input name"
            )
        return self.inputs[0].name

    def _npy(self) -> Iterator[Batch]:
        name = self._single(".npy")
        x = np.load(self.path, mmap_mode="r", allow_pickle=False)
        for i in range(0, min(len(x), self.limit), self.batch):
            yield {name: np.array(x[i : i + self.batch])}, None

    def _npz(self) -> Iterator[Batch]:
        with zipfile.ZipFile(self.path) as zf:
            keys = {n.removesuffix(".npy"): n for n in zf.namelist()}
            wanted = {s.name: s.name for s in self.inputs if s.name in keys}
            if len(wanted) < len(self.inputs) and len(self.inputs) == 1:
                alias = next((k for k in _SINGLE_KEYS if k in keys), None)
                wanted = {self.inputs[0].name: alias} if alias else {}
            if len(wanted) < len(self.inputs):
                need = ", ".join(s.name for s in self.inputs)
                raise InputFileError(
                    f"{self.path}: needs one array per model input ({need}) or x for a single "
                    f"input; found {sorted(keys)}"
                )
            label_key = next((k for k in _LABEL_KEYS if k in keys), None)
            streams = {n: _NpyStream(zf.open(keys[k])) for n, k in wanted.items()}
            labels = _NpyStream(zf.open(keys[label_key])) if label_key else None
            while True:
                feeds = {n: s.read(self.batch) for n, s in streams.items()}
                if any(len(v) == 0 for v in feeds.values()):
                    return
                yield feeds, None if labels is None else labels.read(self.batch)

    def _json_batch(self, rows: list[Any]) -> Batch:
        first = rows[0]
        if not isinstance(first, dict):
            return {self._single("a JSON list per line"): np.asarray(rows)}, None
        labels = next((k for k in _LABEL_KEYS if k in first), None)
        y = np.asarray([r[labels] for r in rows]) if labels else None
        text_key = next((k for k in _TEXT_KEYS if k in first), None)
        if text_key:
            return self._tokenize([str(r[text_key]) for r in rows]), y
        names = [s.name for s in self.inputs]
        if len(names) == 1 and names[0] not in first:
            key = next((k for k in _SINGLE_KEYS if k in first), None)
            if key is None:
                raise InputFileError(
                    f"{self.path}: JSON lines need '{names[0]}', 'x' or 'text' (got {sorted(first)})"
                )
            return {names[0]: np.asarray([r[key] for r in rows])}, y
        missing = [n for n in names if n not in first]
        if missing:
            raise InputFileError(f"{self.path}: JSON lines lack model inputs {missing}")
        return {n: np.asarray([r[n] for r in rows]) for n in names}, y

    def _tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self.tokenizer is None:
            raise InputFileError(f"{self.path}: text data needs a tokenizer (--tokenizer)")
        enc = self.tokenizer.encode_batch(texts)
        fields = {
            "input_ids": [e.ids for e in enc],
            "attention_mask": [e.attention_mask for e in enc],
            "token_type_ids": [e.type_ids for e in enc],
        }
        out = {}
        for spec in self.inputs:
            if spec.name not in fields:
                raise InputFileError(
                    f"{self.path}: model input {spec.name} cannot be made from text "
                    f"(known: {', '.join(fields)})"
                )
            out[spec.name] = np.asarray(fields[spec.name], dtype=np.int64)
        return out


class _NpyStream:
    """Rows of one .npy inside a zip, read on demand from the (decompressing) stream."""

    def __init__(self, f: IO[bytes]):
        version = np.lib.format.read_magic(f)
        header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = header(f)
        if dtype.hasobject:
            raise ValueError("object arrays are not supported (pickles are refused)")
        if fortran and len(shape) > 1:
            raise ValueError("Fortran-ordered arrays cannot be streamed; save them C-ordered")
        self.f, self.dtype, self.row_shape = f, dtype, tuple(shape[1:])
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * dtype.itemsize
        self.left = shape[0] if shape else 0

    def read(self, n: int) -> np.ndarray:
        n = min(n, self.left)
        buf = self.f.read(n * self.row_bytes) if n else b""
        self.left -= n
        return np.frombuffer(buf, self.dtype).reshape((n, *self.row_shape))


def open_source(
    path: str | Path,
    inputs: list[InputSpec],
    *,
    batch: int,
    limit: int,
    tokenizer: str | None = None,
    max_length: int = 128,
) -> FileSource:
    tok = load_tokenizer(tokenizer, max_length) if tokenizer is not None else None
    return FileSource(path, inputs, batch, limit, tok, max_length)


def materialize(source: Source) -> list[Batch]:
    """All batches of an (already capped) source, for data that is read many times."""
    out = list(source.batches())
    if not out:
        raise InputFileError(f"{source}: no examples")
    return out


class CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol over a Source (streamed, one pass)."""

    def __init__(self, source: Source):
        self.source = source
        self.count = 0
        self._it: Iterator[Batch] | None = None

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._it is None:
            self._it = self.source.batches()
        item = next(self._it, None)
        if item is None:
            return None
        self.count += len(next(iter(item[0].values())))
        return item[0]

    def rewind(self) -> None:
        self._it, self.count = None, 0

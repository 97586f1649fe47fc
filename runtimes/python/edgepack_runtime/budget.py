"""The memory budget of reading a package (docs/package-format.md, "The memory budget"): what a
reader may hold in memory, checked by open_package once the listing holds and before any file
is read, so that a refusal costs no more than the caps. The JS and C++ runtimes check the same.

- No zip member inflates more than MAX_INFLATE_RATIO times (above INFLATE_RATIO_FLOOR).
- Every file is streamed through sha256; the only files a reader keeps are the model and the
  files it uses (`kept_files`: samples, sample images, the tokenizer, the recorded generation),
  and those together hold at most MAX_KEPT_BYTES (their listed sizes, which the container's
  sizes matched, are summed first).
- Each sample array's .npy header is read first (at most HEAD_BYTES, from the zip or the
  folder) and must fit its use: numbers, the model tensor's dtype, its rank and fixed dims, and
  exactly the listed size; raw samples a whole number of the preprocessing's sample shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._source import Source, inflate_ratio_error
from .errors import InvalidPackageError
from .limits import MAX_KEPT_BYTES
from .manifest import mobile_files, referenced_files
from .npy import HEAD_BYTES, NpyHeader, check_data_size, parse_header


def kept_files(manifest: dict[str, Any]) -> list[str]:
    """The files a reader holds in memory besides the model, sorted."""
    models = {manifest["model"], *mobile_files(manifest)}
    return sorted(set(referenced_files(manifest)) - models)


def check_budget(source: Source, manifest: dict[str, Any]) -> None:
    """IntegrityError for a zip bomb; InvalidPackageError when the kept files exceed the budget
    or a sample does not fit."""
    files = manifest["files"]
    for name in sorted(files):  # a zip member that inflates far more than deflate ever does
        bomb = inflate_ratio_error(name, source.size(name), source.stored_size(name))
        if bomb is not None:
            raise bomb
    sizes = {name: int(files[name]["size"]) for name in kept_files(manifest)}
    total = sum(sizes.values())
    if total > MAX_KEPT_BYTES:
        biggest = max(sizes, key=sizes.__getitem__)
        raise InvalidPackageError(
            f"{biggest}: {sizes[biggest]} bytes; the samples, tokenizer and generation a reader "
            f"keeps total {total} bytes, over the {MAX_KEPT_BYTES >> 20} MiB cap of the memory "
            "budget (edgepack writes a few MB)"
        )
    for name, spec in _sample_arrays(manifest):
        size = sizes[name]
        header = parse_header(source.head(name, min(size, HEAD_BYTES)), name, InvalidPackageError)
        check_data_size(header, size, name, InvalidPackageError)
        _check_fits(header, name, spec)


def _sample_arrays(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file, what it must fit) for every .npy sample: a model tensor's spec, or for raw samples
    {"values": n} (a whole number of n-value samples) or {} (numbers)."""
    samples = manifest.get("samples") or {}
    for key in ("inputs", "outputs"):
        specs = {t["name"]: t for t in manifest[key]}
        for tensor, path in (samples.get(key) or {}).items():
            if tensor not in specs:
                raise InvalidPackageError(
                    f"manifest.json: samples.{key} names {tensor!r}, not a model {key[:-1]} "
                    f"{sorted(specs)}"
                )
            yield path, specs[tensor]
    raw = samples.get("raw")
    if isinstance(raw, str) and raw.endswith(".npy"):
        pre = manifest.get("preprocessing") or {"type": "none"}
        shape = pre.get("sample_shape")
        if pre.get("type") == "tensor" and isinstance(shape, list):
            yield raw, {"values": math.prod(d for d in shape if isinstance(d, int))}
        else:
            yield raw, {}


def _dtype(name: object) -> np.dtype | None:
    try:
        return np.dtype(str(name))
    except TypeError:
        return None


def _check_fits(header: NpyHeader, name: str, spec: dict[str, Any]) -> None:
    def refuse(why: str) -> InvalidPackageError:
        return InvalidPackageError(f"{name}: {why}: it does not fit its use")

    if "values" in spec:
        per, count = spec["values"], math.prod(header.shape)
        if per <= 0 or count == 0 or count % per:
            raise refuse(
                f"shape {header.shape} is not a whole number of preprocessing.sample_shape "
                f"samples ({per} values each)"
            )
        return
    if "shape" not in spec:
        return
    want = _dtype(spec["dtype"])
    if want is not None and header.dtype != want:
        raise refuse(f"dtype {header.dtype} for tensor {spec['name']!r} of dtype {want}")
    dims = spec["shape"]
    fixed = [(i, d) for i, d in enumerate(dims) if isinstance(d, int) and d >= 0]
    if len(dims) != len(header.shape) or any(header.shape[i] != d for i, d in fixed):
        shown = ", ".join(str(d) for d in dims)
        raise refuse(f"shape {header.shape} for tensor {spec['name']!r} of shape [{shown}]")

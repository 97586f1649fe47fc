"""Inputs for a bare model: a user's .npz of feeds, or seeded ones made by the benchmark child's
own rule (packager.bench.child.generate_feeds), so that every part of edgepack that runs a model
without data (bench, the speed check, an opset upgrade's check, export parity) makes the same
inputs, guesses the same dims, and refuses the same integer inputs by name.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packager.bench.errors import BenchError


def load_feeds(path: str | Path, batch: int | None = None) -> dict[str, Any]:
    """The arrays of an .npz (one per input name), cycled to `batch` rows when given."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            feeds = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError) as err:
        raise BenchError(f"feeds {path}: cannot read an .npz of arrays ({err})") from None
    if batch is None:
        return feeds
    out = {}
    for name, value in feeds.items():
        if value.ndim == 0 or len(value) == 0:
            raise BenchError(f"feeds {path}: input {name!r} has no examples to batch")
        out[name] = value[np.arange(batch) % len(value)]
    return out


def generated_feeds(
    model: str | Path, *, batch: int = 1, dims: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """(feeds, guessed dims) for `model`, as the benchmark child makes them; a BenchError
    naming the integer inputs that cannot be made up honestly."""
    import numpy as np

    from packager.bench.child import SpecError, session_feeds
    from packager.onnx_utils import session

    try:
        feeds, _, guessed = session_feeds(session(Path(model)), batch, dict(dims or {}), np)
    except SpecError as err:
        raise BenchError(str(err)) from None
    return feeds, guessed


def fit_to_dims(
    feeds: dict[str, Any], model: str | Path, dims: Mapping[str, int]
) -> dict[str, Any]:
    """`feeds` (a package's samples) along each symbolic axis `dims` names, cycled or cut to
    that length: `--dim sequence=128` on a text package times 128 of its samples' own tokens,
    not the samples' length."""
    import numpy as np

    from packager.onnx_utils import io_spec

    if not dims:
        return feeds
    axes = {i["name"]: i["shape"] for i in io_spec(Path(model))["inputs"]}
    out = dict(feeds)
    for name, value in feeds.items():
        for axis, dim in enumerate(axes.get(name) or []):
            if isinstance(dim, str) and dim in dims and axis < value.ndim:
                n = dims[dim]
                value = np.take(value, np.arange(n) % value.shape[axis], axis=axis)
        out[name] = value
    return out

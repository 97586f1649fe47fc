"""The shapes an export is traced and checked at: symbolic dims bound to example values, and
three shapes for the parity check (the example, then every dim grown; batch-like dims 2, 1, 3).

Growing keeps a dim's divisibility: a detector that halves H and W five times needs H % 32 == 0
at every size, so each value moves in steps of the largest power of two (up to 32) that divides
the example. A dim nobody gave an example for is guessed (batch-like: 2, others: 32) and the
guess is returned so the caller can say it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

BATCH_GUESS, DIM_GUESS = 2, 32
_BATCH_STEPS = (0, -1, 1)  # example batch, then one less (at least 1), then one more
_GROWTH = (1.0, 1.5, 2.0)


def is_batch(name: str) -> bool:
    return "batch" in name.lower() or name in ("N", "n")


def example_dims(
    symbolic: Sequence[str], given: Mapping[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """(a value for every symbolic dim, the ones that were guessed)."""
    values, guessed = {}, {}
    for name in dict.fromkeys(symbolic):
        if name in given:
            values[name] = int(given[name])
        else:
            values[name] = guessed[name] = BATCH_GUESS if is_batch(name) else DIM_GUESS
    return values, guessed


def _step(value: int) -> int:
    unit = 1
    while value % (unit * 2) == 0 and unit * 2 <= min(32, max(1, value // 2)):
        unit *= 2
    return unit


def parity_dims(example: Mapping[str, int]) -> list[dict[str, int]]:
    """Three bindings of the symbolic dims: the example, then larger ones."""
    out = []
    for k, growth in enumerate(_GROWTH):
        dims = {}
        for name, value in example.items():
            if is_batch(name):
                dims[name] = max(1, value + _BATCH_STEPS[k])
            else:
                unit = _step(value)
                dims[name] = max(unit, round(value * growth / unit) * unit)
        if dims not in out:
            out.append(dims)
    return out


def bind(shape: Sequence[int | str], dims: Mapping[str, int]) -> list[int]:
    return [d if isinstance(d, int) else int(dims[d]) for d in shape]


def make_feeds(
    inputs: Sequence[tuple[str, Sequence[int | str], str]], dims: Mapping[str, int], seed: int = 0
) -> dict[str, Any]:
    """Seeded feeds for (name, shape, dtype) inputs at `dims`: floats standard normal, integers
    only where the name says what they hold (the benchmark child's rule); a ValueError naming
    every integer input that cannot be made up honestly."""
    from packager.bench.child import int_value

    rng = np.random.default_rng(seed)
    feeds, refused = {}, []
    for name, shape, dtype in inputs:
        concrete = bind(shape, dims)
        if dtype.startswith("float"):
            feeds[name] = rng.standard_normal(concrete).astype(dtype)
        elif (value := int_value(name, dtype, concrete, rng, np)) is not None:
            feeds[name] = np.ascontiguousarray(value)
        else:
            refused.append(f"{name} ({dtype})")
    if refused:
        raise ValueError(
            f"input(s) {', '.join(refused)} cannot be generated honestly for the parity check "
            "(a made-up length or index changes what the model computes): pass real inputs "
            "with --feeds FILE.npz"
        )
    return feeds

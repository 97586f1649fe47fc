"""Options several commands share: `--dim NAME=VALUE`, finite floats and input-file checks.
Click only."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import click


def dims_option(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, int]:
    """`--dim NAME=VALUE` (repeatable): the values of named symbolic input dims."""
    from packager.limits import MAX_DIM

    out = {}
    for item in value:
        name, _, v = item.partition("=")
        digits = v.strip()
        if (
            not name.strip()
            or not digits.isdigit()
            or len(digits) > 9
            or not 1 <= int(digits) <= MAX_DIM
        ):
            raise click.BadParameter(
                f"expected NAME=INT with INT from 1 to {MAX_DIM} (e.g. sequence=128), got {item!r}"
            )
        out[name.strip()] = int(v)
    return out


def check_file(flag: str, value: str | None, suffixes: Iterable[str], what: str = "file") -> None:
    """A file the user names must be a regular file within the data cap with one of `suffixes`:
    one line otherwise."""
    from packager.errors import InputFileError

    if value is None:
        return
    p = Path(value)
    regular_file(flag, p)
    allowed = tuple(suffixes)
    if p.suffix not in allowed:
        raise InputFileError(
            f"{flag} {value}: unsupported {what} {p.suffix!r} (use {', '.join(allowed)})"
        )


def regular_file(flag: str, path: Path, max_bytes: int | None = None) -> None:
    """`path` must be a regular file within `max_bytes` (a data file's cap by default): one line
    for a missing one, one for a folder, FIFO or device (a FIFO would block the read), one for a
    file over the cap. The runtime's own check (packager.edge_runtime.user_file)."""
    from packager.edge_runtime import MAX_DATA_BYTES, user_file

    user_file(path, MAX_DATA_BYTES if max_bytes is None else max_bytes, f"{flag} {path}")


class Threads(click.ParamType):
    """A thread count: 1 to edgepack_runtime's 4 per core of this machine (packager.limits)."""

    name = "threads"

    def convert(self, value, param, ctx):
        from packager.limits import threads_error

        n = click.INT.convert(value, param, ctx)
        why = threads_error(n)
        if why is not None:
            self.fail(why, param, ctx)
        return n


def _integers(value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:  # not digits, or past Python's 4300 digits
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not out:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}")
    return out


def int_list(
    ctx: click.Context, param: click.Parameter, value: str | None, top: int
) -> tuple[int, ...]:
    """Comma-separated integers, each 1 to `top` (a callback's body: `--batch 1,8`)."""
    if value is None:
        return ()
    out = _integers(value)
    if any(not 1 <= v <= top for v in out):
        raise click.BadParameter(f"expected integers from 1 to {top}, got {value!r}")
    return out


def threads_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    """`--threads 1,2,4`: each 1 to 4 per core of this machine (packager.limits)."""
    from packager.limits import threads_error

    out = () if value is None else _integers(value)
    why = next((w for n in out if (w := threads_error(n))), None)
    if why is not None:
        raise click.BadParameter(why)
    return out


class Finite(click.FloatRange):
    """A float range that also refuses nan and inf (click's FloatRange lets nan through: every
    comparison with it is false)."""

    name = "finite float"

    def _describe_range(self) -> str:  # no bounds: nothing to show beside the option's help
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value, param, ctx):
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return out

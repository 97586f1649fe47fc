"""Command-line options made from config classes, so a command never restates a config by hand.

Each field of the given classes becomes one option: `--field-name` (or the flag its field
declares in `json_schema_extra={"cli": ...}`: `--threads`, `--per-channel/--per-tensor`), typed
from its annotation (Literal: a choice; bool: a flag pair; tuple: repeatable; dict[str, int]:
`NAME=VALUE` pairs), its help from the field's description plus its default and, for a field
only some classes have, the classes (modes) that take it. Options default to None: a value the
user did not give is left to the config's own default, and one the chosen class does not take
is the config's load-time error.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from packager.cli.options import dims_option


def _unwrap(ann: Any) -> tuple[Any, bool]:
    """(the annotation without None, whether None is allowed)."""
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], len(rest) < len(args)
    return ann, False


def _literal_values(ann: Any) -> list[Any] | None:
    if typing.get_origin(ann) is typing.Literal:
        return list(typing.get_args(ann))
    return None


class _IntChoice(click.Choice):
    """A choice among integers and names (Literal["auto", 0, 1, 2]): integers come back ints."""

    def __init__(self, values: list[Any]):
        super().__init__([str(v) for v in values])

    def convert(self, value, param, ctx):
        out = super().convert(str(value), param, ctx)
        return int(out) if out.isdigit() else out


def option_for(name: str, info: Any, owners: list[str] | None, path: bool) -> click.Option:
    """The click option of one config field (`owners`: the modes that take it, None: all)."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    flag = str(extra.get("cli") or "--" + name.replace("_", "-"))
    ann, _optional = _unwrap(info.annotation)
    help_text = info.description or ""
    default = info.get_default(call_default_factory=True)
    shown = "auto" if default == "auto" else default
    if default not in (None, (), {}) and not isinstance(default, bool):
        help_text += f" [default: {shown}]"
    elif isinstance(default, bool) and "/" not in flag:
        help_text += f" [default: {default}]"
    if owners:
        help_text += f" (mode {', '.join(owners)})"
    kw: dict[str, Any] = {"default": None, "help": help_text}
    literal = _literal_values(ann)
    if "/" in flag or ann is bool:
        decl = flag if "/" in flag else f"{flag}/--no-{flag[2:]}"
        return click.Option([decl, name], **kw)
    if name == "dims" or typing.get_origin(ann) is dict:
        return click.Option(
            [flag, name], multiple=True, callback=dims_option, metavar="NAME=VALUE", **kw
        )
    if typing.get_origin(ann) is tuple:
        return click.Option([flag, name], multiple=True, **{**kw, "default": ()})
    if literal is not None:
        ints = any(isinstance(v, int) and not isinstance(v, bool) for v in literal)
        kind = _IntChoice(literal) if ints else click.Choice([str(v) for v in literal])
        return click.Option([flag, name], type=kind, **kw)
    if path:
        return click.Option([flag, name], type=click.Path(), **kw)
    kind = {int: int, float: float, str: str}.get(ann, str)
    return click.Option([flag, name], type=kind, **kw)


def options_of(classes: dict[str, type], skip: Iterable[str] = ()) -> list[click.Option]:
    """One option per field of `classes` (name -> config class, e.g. mode -> scheme config),
    in the order fields first appear; fields every class shares carry no owners."""
    owners: dict[str, list[str]] = {}
    infos: dict[str, tuple[Any, bool]] = {}
    for label, cls in classes.items():
        for name, info in cls.model_fields.items():
            if name in skip:
                continue
            owners.setdefault(name, []).append(label)
            infos.setdefault(name, (info, name in getattr(cls, "path_fields", ())))
    out = []
    for name, (info, path) in infos.items():
        shared = len(owners[name]) == len(classes)
        out.append(option_for(name, info, None if shared else owners[name], path))
    return out


def given(values: dict[str, Any], classes: dict[str, type]) -> dict[str, Any]:
    """The fields the user gave (options left at None, or empty repeatables, are not given);
    paths made absolute (a cached config must not depend on the working directory); a
    repeatable whose field declares `cli_globs` sends its glob patterns to that field."""
    fields: dict[str, Any] = {}
    paths: set[str] = set()
    infos: dict[str, Any] = {}
    for cls in classes.values():
        paths |= set(getattr(cls, "path_fields", ()))
        for name, info in cls.model_fields.items():
            infos.setdefault(name, info)
    for name, value in values.items():
        if name not in infos or value is None or value in ((), {}):
            continue
        if name in paths and isinstance(value, str):
            value = str(Path(value).resolve())
        if isinstance(value, tuple):
            value = list(value)
        extra = infos[name].json_schema_extra
        globs = extra.get("cli_globs") if isinstance(extra, dict) else None
        if globs and isinstance(value, list):
            patterns = [v for v in value if any(c in v for c in "*?[")]
            value = [v for v in value if v not in patterns]
            if patterns:
                fields[globs] = [*fields.get(globs, []), *patterns]
            if not value:
                continue
        fields[name] = value
    return fields

"""A recipe's validation error as one line that names the field, the value and the rule.

pydantic locates an error inside a tagged union (distill.student, quantize) by the tag as well:
the tag is resolved to its member class (so an unknown field lists that class's fields) and not
shown; inside the quantize section the line names the mode, and a field of another scheme says
which mode takes it.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel, Tag, ValidationError

from packager.config.base import section_class
from packager.quantize.registry import SCHEMES


def _member(annotation: Any, tag: str) -> type | None:
    """The class a tagged union field holds under `tag` (pydantic Tag metadata), if any."""
    if hasattr(annotation, "union_members"):  # the quantize: union, by mode
        return dict(annotation.union_members()).get(tag)
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            cls, *meta = typing.get_args(arg)
            if any(isinstance(m, Tag) and m.tag == tag for m in meta):
                return cls
        found = _member(arg, tag) if typing.get_args(arg) else None
        if found is not None:
            return found
    return None


def format_error(source: str, err: ValidationError, root: type[BaseModel]) -> str:
    e = err.errors()[0]
    parts, model, mode, field = [], root, None, None
    for i, part in enumerate(e["loc"]):
        tagged = (
            _member(field.annotation, part) if field is not None and isinstance(part, str) else None
        )
        if tagged is not None:
            model, field = tagged, None
            mode = part if parts[-1:] == ["quantize"] else mode
            continue
        parts.append(str(part))
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        if field is not None and i < len(e["loc"]) - 1:
            model = section_class(field.annotation, model)
    loc, msg = ".".join(parts), e["msg"].removeprefix("Value error, ")
    where = f" (mode {mode})" if mode else ""
    if not loc or (loc == "quantize" and mode):  # a check across fields: its message names them
        return f"recipe {source}: {msg}"
    if e["type"] == "union_tag_invalid" and loc == "quantize":
        got, modes = json.dumps(e["ctx"]["tag"]), [f"'{m}'" for m in SCHEMES]
        allowed = f"{', '.join(modes[:-1])} or {modes[-1]}" if len(modes) > 1 else modes[0]
        return f"recipe {source}: quantize.mode = {got} is not allowed: Input should be {allowed}"
    if e["type"] == "extra_forbidden":
        takes = (
            [m for m, s in SCHEMES.items() if parts[-1] in s.config.model_fields] if mode else []
        )
        if takes:
            return f"recipe {source}: {loc} applies to mode {' or '.join(takes)}, not {mode}"
        allowed = ", ".join(model.model_fields) if issubclass(model, BaseModel) else "?"
        return f"recipe {source}: {loc}: unknown field{where} (allowed: {allowed})"
    if parts[-1] in getattr(model, "unechoed", ()):  # may hold a key pasted in the wrong place
        return f"recipe {source}: {loc} is not allowed{where}: {msg}"
    got = json.dumps(e.get("input"), default=str)
    return f"recipe {source}: {loc} = {got} is not allowed{where}: {msg}"

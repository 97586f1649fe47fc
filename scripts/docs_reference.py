"""The documentation site's references, generated from the code so they cannot go stale.

- `recipe_reference()`: every field of `packager.recipe.Recipe`, walked generically through
  nested configs and tagged unions (each member class documented under its tag value, e.g.
  `distill.student` with `arch: transformer`), with its type, default and description.
- `cli_reference()`: every `edgepack` command and option, from click.

mkdocs runs this file as a hook (mkdocs.yml `hooks:`): `on_files` adds both pages to the site
at build time, so nothing generated is committed. `python scripts/docs_reference.py DIR` writes
them to DIR to read them without a build. tests/docs/test_docs.py checks that every field and
option appears and that `mkdocs build --strict` passes.
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RECIPE_PAGE, CLI_PAGE = "reference/recipe.md", "reference/cli.md"


# --- types -------------------------------------------------------------------------------------


def _strip(ann: Any) -> tuple[Any, list[Any]]:
    """(the type under Annotated, its metadata)."""
    if get_origin(ann) is typing.Annotated:
        base, *meta = get_args(ann)
        inner, more = _strip(base)
        return inner, meta + more
    return ann, []


def _is_union(ann: Any) -> bool:
    return get_origin(ann) in (Union, types.UnionType)


def type_name(ann: Any) -> str:
    """A type as a recipe writer reads it: `int | none`, `'static' | 'dynamic'`, `list[int]`."""
    from pydantic import BaseModel

    ann, _ = _strip(ann)
    if ann is type(None):
        return "none"
    if _is_union(ann):
        return " | ".join(dict.fromkeys(type_name(a) for a in get_args(ann)))
    if get_origin(ann) is Literal:
        return " | ".join(repr(a) if isinstance(a, str) else str(a) for a in get_args(ann))
    origin = get_origin(ann)
    if origin is not None:
        args = ", ".join(type_name(a) for a in get_args(ann) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "section"
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return " | ".join(repr(m.value) for m in ann)
    return getattr(ann, "__name__", str(ann))


def union_members(field) -> list[tuple[str | None, type]]:
    """The config classes a field holds, each with its tag: a `Tag` on the member, or the value
    of the field a string discriminator names (e.g. `mode`); one untagged class otherwise."""
    from pydantic import BaseModel, Tag

    disc = field.discriminator if isinstance(field.discriminator, str) else None

    def walk(ann: Any) -> list[tuple[str | None, type]]:
        base, meta = _strip(ann)
        if hasattr(base, "union_members"):  # a union of registered classes (quantize: schemes)
            return list(base.union_members())
        if _is_union(base):
            return [m for a in get_args(base) for m in walk(a)]
        if isinstance(base, type) and issubclass(base, BaseModel):
            tag = next((m.tag for m in meta if isinstance(m, Tag)), None)
            if tag is None and disc and disc in base.model_fields:
                values = get_args(_strip(base.model_fields[disc].annotation)[0])
                tag = " | ".join(str(v) for v in values) or None
            return [(tag, base)]
        return []

    return walk(field.annotation)


def default_text(field) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, enum.Enum):
        value = value.value
    text = "none" if value is None else repr(value) if isinstance(value, str) else str(value)
    return text.replace("|", "\\|")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# --- the recipe --------------------------------------------------------------------------------


def _section(path: str, cls: type, tag: str | None, disc: str | None, out: list[str]) -> None:
    heading = f"`{path}`" + (f" ({disc}: `{tag}`)" if tag else "")
    out += [f"## {heading}" if path.count(".") == 0 else f"### {heading}", ""]
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(cls.__name__ + "("):
        out += [" ".join(doc.split()), ""]
    out += [
        f"Class `{cls.__module__}.{cls.__name__}`.",
        "",
        "| field | type | default | description |",
        "|---|---|---|---|",
    ]
    nested = []
    for name, field in cls.model_fields.items():
        members = union_members(field)
        desc = field.description or ""
        if members:
            shown = (
                "one of: " + ", ".join(f"`{t}`" for t, _ in members if t)
                if len(members) > 1
                else "section"
            )
            out.append(f"| `{name}` | {shown} | {default_text(field)} | {_cell(desc)} |")
            tagged = len(members) > 1
            nested += [(f"{path}.{name}", m, t, _disc_name(field, m), tagged) for t, m in members]
        else:
            out.append(
                f"| `{name}` | `{_cell(type_name(field.annotation))}` | `{default_text(field)}` "
                f"| {_cell(desc)} |"
            )
    out.append("")
    for sub, member, tag, disc_name, tagged in nested:
        _section(sub, member, tag if tagged else None, disc_name, out)


def _disc_name(field, member: type) -> str | None:
    if isinstance(field.discriminator, str):
        return field.discriminator
    for name in ("arch", "mode", "kind", "type"):  # a callable discriminator reads one of these
        if name in member.model_fields:
            return name
    return "tag"


def recipe_reference() -> str:
    from packager.recipe import Recipe

    out = [
        "# Recipe reference",
        "",
        "Generated from the pydantic configs (`packager.recipe.Recipe` and every section under "
        "it) each time the site is built: every field, its type, its default and its "
        "description. A section that is a union of configs lists each member under its tag "
        "(the value of the field that picks it). Override any field with "
        "`edgepack build RECIPE --set section.field=value`.",
        "",
        "## Top level",
        "",
        "| field | type | default | description |",
        "|---|---|---|---|",
    ]
    sections = []
    for name, field in Recipe.model_fields.items():
        members = union_members(field)
        if members:
            sections += [(name, m, t, _disc_name(field, m), len(members) > 1) for t, m in members]
            continue
        out.append(
            f"| `{name}` | `{_cell(type_name(field.annotation))}` | `{default_text(field)}` | "
            f"{_cell(field.description or '')} |"
        )
    out += [
        "",
        "Sections: " + ", ".join(f"`{n}`" for n in dict.fromkeys(s[0] for s in sections)),
        "",
    ]
    for name, cls, tag, disc, tagged in sections:
        _section(name, cls, tag if tagged else None, disc, out)
    return "\n".join(out) + "\n"


# --- the command line --------------------------------------------------------------------------


def _option_row(ctx, param) -> str:
    import click

    record = param.get_help_record(ctx)
    names = record[0] if record else ", ".join(param.opts)
    if isinstance(param, click.Argument):
        names = param.human_readable_name
    kind = getattr(param.type, "name", str(param.type))
    if isinstance(param.type, click.Choice):
        kind = " | ".join(param.type.choices)
    if getattr(param, "is_flag", False):
        kind = "flag"
    default = param.get_default(ctx, call=False)
    unset = default is None or callable(default) or type(default).__name__ == "Sentinel"
    shown = (
        ""
        if unset or default in ((), False) or str(default).startswith("Sentinel")
        else str(default)
    )
    help_text = getattr(param, "help", None) or (
        "(argument)" if isinstance(param, click.Argument) else ""
    )
    many = " (repeatable)" if getattr(param, "multiple", False) else ""
    return f"| `{_cell(names)}` | {_cell(kind)}{many} | {_cell(shown)} | {_cell(help_text)} |"


def cli_reference() -> str:
    import click

    from packager.cli import cli

    out = [
        "# CLI reference",
        "",
        "Generated from the click commands each time the site is built: every `edgepack` "
        "command and every option, with its type, default and help.",
        "",
    ]
    root = click.Context(cli, info_name="edgepack")
    for name in sorted(cli.list_commands(root)):
        cmd = cli.get_command(root, name)
        ctx = click.Context(cmd, info_name=name, parent=root)
        out += [
            f"## `edgepack {name}`",
            "",
            "```",
            cmd.get_usage(ctx).removeprefix("Usage: "),
            "```",
            "",
        ]
        if cmd.help:
            out += [inspect.cleandoc(cmd.help).replace("\b\n", ""), ""]
        out += ["| option | type | default | help |", "|---|---|---|---|"]
        out += [_option_row(ctx, p) for p in cmd.get_params(ctx)]
        out.append("")
    return "\n".join(out) + "\n"


# --- mkdocs hook and command line ----------------------------------------------------------------


def on_files(files, config):
    """mkdocs hook: the two reference pages, generated now, added to the site's files."""
    from mkdocs.structure.files import File

    for page, text in ((RECIPE_PAGE, recipe_reference()), (CLI_PAGE, cli_reference())):
        files.append(File.generated(config, page, content=text))
    return files


if __name__ == "__main__":
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "site-reference")
    for page, text in ((RECIPE_PAGE, recipe_reference()), (CLI_PAGE, cli_reference())):
        (dest / page).parent.mkdir(parents=True, exist_ok=True)
        (dest / page).write_text(text)
        print(dest / page)

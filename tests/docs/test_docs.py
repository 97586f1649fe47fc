"""The documentation site (issue 29): `mkdocs build --strict` passes, the recipe and CLI
references are generated from the code and hold every field and every option, and the README
stays a short page that points into the site."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "docs_reference", ROOT / "scripts/docs_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _configs(cls: type[BaseModel], seen: dict) -> dict:
    """Every config class reachable from `cls`'s fields (through unions, optionals, Annotated)."""
    seen[cls] = None

    def walk(ann):
        if isinstance(ann, type) and issubclass(ann, BaseModel) and ann not in seen:
            _configs(ann, seen)
        for arg in typing.get_args(ann):
            walk(arg)

    for field in cls.model_fields.values():
        walk(field.annotation)
    return seen


def test_every_recipe_field_is_in_the_generated_reference():
    from packager.recipe import Recipe

    page = _generator().recipe_reference()
    configs = [c for c in _configs(Recipe, {}) if c is not Recipe]
    assert len(configs) > 15
    for cls in configs:
        marker = f"Class `{cls.__module__}.{cls.__name__}`."
        assert marker in page, f"{cls.__name__} is not documented"
        # every section that documents this class (a class may sit under several tags)
        for section in page.split(marker)[1:]:
            table = section.split("\n#", 1)[0]
            for name in cls.model_fields:
                assert f"| `{name}` |" in table, f"{cls.__name__}.{name} missing"
    for name in Recipe.model_fields:
        assert f"`{name}`" in page


def test_a_tagged_union_documents_each_member_under_its_tag():
    page = _generator().recipe_reference()
    for tag in ("cnn", "transformer", "causal-lm"):
        assert f"### `distill.student` (arch: `{tag}`)" in page


def test_every_cli_command_and_option_is_in_the_generated_reference():
    from packager.cli import cli

    page = _generator().cli_reference()
    root = click.Context(cli, info_name="edgepack")
    names = cli.list_commands(root)
    assert {"build", "export", "bench", "quantize"} <= set(names)
    for name in names:
        cmd = cli.get_command(root, name)
        section = page.split(f"## `edgepack {name}`", 1)[1].split("\n## ", 1)[0]
        for param in cmd.params:
            for opt in (
                param.opts if isinstance(param, click.Option) else [param.human_readable_name]
            ):
                assert opt in section, f"edgepack {name} {opt} missing"


def test_mkdocs_builds_the_site_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for page in (
        "reference/recipe/index.html",
        "reference/cli/index.html",
        "getting-started/index.html",
    ):
        assert (tmp_path / "site" / page).is_file()
    html = (tmp_path / "site/reference/cli/index.html").read_text()
    assert "--allow-download" in html  # a flag added in this issue: the page is not stale


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 200
    for target in re.findall(r"\]\((?!https?://)([^)#]+)", text):
        assert (ROOT / target).exists(), target
    for job in ("edgepack export", "edgepack bench", "edgepack build"):
        assert job in text

"""Shared fixtures: one tiny digits build per session, reused by the stage and CLI tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("CI", "true")  # no progress bars in test output


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_build(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The whole chain on the tiny digits recipe, built once."""
    from tiny_models import tiny_recipe

    from packager.pipeline import run
    from packager.progress import SilentReporter

    out = tmp_path_factory.mktemp("dist")
    recipe = tiny_recipe(package={"out_dir": str(out)})
    return run(recipe, cache_dir=cache_dir, reporter=SilentReporter())

"""nets/array.py: factories by name, and the names cached artifacts recorded before a move."""

from __future__ import annotations

import pytest

from packager.errors import RecipeError
from packager.nets.array import mlp, resolve_factory


def test_a_factory_is_found_by_its_module_and_name():
    assert resolve_factory("packager.nets.array:mlp") is mlp


def test_a_factory_recorded_under_the_old_module_name_still_loads():
    # artifacts cached before the rename name packager.nets.arch in their meta
    assert resolve_factory("packager.nets.arch:mlp") is mlp


def test_a_missing_factory_is_one_recipe_error():
    with pytest.raises(RecipeError, match="has no callable 'nope'"):
        resolve_factory("packager.nets.array:nope")

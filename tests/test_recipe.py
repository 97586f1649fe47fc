"""Recipe validation: typed choices, one-line errors that name field, value and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import tiny_recipe_dict

from packager.config import Config
from packager.errors import RecipeError
from packager.recipe import REPO_MODELS, Recipe, build_recipe, list_recipes, load_recipe


def test_every_recipe_in_models_validates_and_opens_with_its_purpose():
    recipes = list_recipes()
    assert any(Path(p).name == "digits.yaml" for p, _ in recipes)
    for path, purpose in recipes:
        load_recipe(path)
        assert Path(path).read_text().startswith("# "), path
        assert len(purpose) > 20, path


def _configs(model: Config):
    yield model
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Config):
            yield from _configs(value)


def test_every_stage_config_round_trips_through_json():
    recipe = load_recipe(REPO_MODELS / "digits.yaml")
    for cfg in _configs(recipe):
        again = type(cfg).model_validate(json.loads(json.dumps(cfg.to_json())))
        assert again == cfg
        assert again.digest() == cfg.digest()


def test_defaults_alone_make_a_valid_recipe():
    assert build_recipe({}).quantize.mode == "static"


def test_bad_choice_names_field_value_and_allowed_values():
    with pytest.raises(RecipeError) as err:
        build_recipe(tiny_recipe_dict(quantize={"mode": "int3"}), "r.yaml")
    msg = str(err.value)
    assert "quantize.mode" in msg and '"int3"' in msg and "'static'" in msg and "'dynamic'" in msg
    assert "\n" not in msg
    assert err.value.exit_code == 2


def test_unknown_field_lists_the_allowed_ones():
    with pytest.raises(
        RecipeError, match=r"distill\.temprature: unknown field \(allowed: .*temperature"
    ):
        build_recipe(tiny_recipe_dict(distill={"temprature": 3}))


def test_out_of_range_number_is_refused():
    with pytest.raises(RecipeError, match=r"distill\.alpha = 1\.5 is not allowed"):
        build_recipe(tiny_recipe_dict(distill={"alpha": 1.5}))


def test_teacher_source_scheme_is_checked():
    with pytest.raises(RecipeError, match=r"teacher\.source.*python:MODULE:FACTORY"):
        build_recipe(tiny_recipe_dict(teacher={"source": "resnet50"}))


def test_set_overrides_parse_yaml_values_and_are_validated(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("# a test recipe\nname: t\n")
    r = load_recipe(
        p, ("bench.threads=[1,2]", "distill.student.hidden=12", "quantize.mode=dynamic")
    )
    assert (
        r.bench.threads == (1, 2)
        and r.distill.student.hidden == 12
        and r.quantize.mode == "dynamic"
    )
    with pytest.raises(RecipeError, match=r"quantize\.per_channel"):
        load_recipe(p, ("quantize.per_channel=maybe",))
    with pytest.raises(RecipeError, match=r"expected section\.field=value"):
        load_recipe(p, ("bench.runs",))


def test_invalid_yaml_and_missing_file_are_one_line_errors(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(p)
    with pytest.raises(RecipeError, match="file not found"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(tmp_path / "list.yaml")


def test_configs_are_frozen():
    r = Recipe()
    with pytest.raises(Exception):  # noqa: B017  (pydantic raises ValidationError on frozen assignment)
        r.quantize.mode = "dynamic"  # type: ignore[misc]

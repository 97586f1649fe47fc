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


def test_recipe_paths_resolve_against_the_recipe_file_and_set_against_the_cwd(
    tmp_path, monkeypatch
):
    # main: `edgepack build effnet/effnet.yaml` looked for data.source in the working directory.
    proj = tmp_path / "effnet"
    (proj / "targets").mkdir(parents=True)
    (proj / "effnet.yaml").write_text(
        "task: image-classification\n"
        "teacher: {source: 'python:efflite:make', weights: w/teacher.safetensors}\n"
        "data: {source: build_data.npz, labels_file: labels.npy}\n"
        "quantize: {calib: calib.npz, feeds: /abs/feeds.npz}\n"
        "bench: {targets_dir: targets, feeds: feeds.npz}\n"
        "package: {out_dir: dist}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = load_recipe("../effnet/effnet.yaml")
    base = proj.resolve()
    assert r.data.source == str(base / "build_data.npz")
    assert r.data.labels_file == str(base / "labels.npy")
    assert r.teacher.weights == str(base / "w/teacher.safetensors")
    assert r.teacher.import_path == str(base)  # python: modules beside the recipe
    assert r.quantize.calib == str(base / "calib.npz") and r.quantize.feeds == "/abs/feeds.npz"
    assert r.bench.targets_dir == str(base / "targets") and r.bench.feeds == str(base / "feeds.npz")
    assert r.package.out_dir == "dist"  # an output: relative to where the build runs
    over = load_recipe("../effnet/effnet.yaml", ("data.source=mine.npz",))
    assert over.data.source == "mine.npz"  # --set: as typed, relative to the working directory


def test_hf_sources_resolve_beside_the_recipe_but_a_hub_id_stays_a_hub_id(tmp_path):
    (tmp_path / "teacher").mkdir()
    (tmp_path / "r.yaml").write_text(
        "task: text-classification\nteacher: {source: 'hf:teacher'}\n"
        "data: {source: texts.jsonl}\ndistill: {student: {arch: transformer}}\n"
    )
    assert load_recipe(tmp_path / "r.yaml").teacher.source == f"hf:{tmp_path.resolve()}/teacher"
    (tmp_path / "r.yaml").write_text(
        (tmp_path / "r.yaml").read_text().replace("hf:teacher", "hf:sentence-transformers/x")
    )
    assert load_recipe(tmp_path / "r.yaml").teacher.source == "hf:sentence-transformers/x"


def test_distill_none_ships_the_teacher_and_per_channel_mean_points_to_image_data():
    from packager.plans import build_plan

    r = build_recipe({"distill": "none"})
    assert r.distill.enabled is False
    steps = {s.name: s for s in build_plan(r)}
    assert "distill" not in steps and steps["quantize"].roles["model"] == "export_teacher"
    assert steps["package"].roles["student"] == "teacher"
    with pytest.raises(RecipeError, match=r"data.image.mean"):
        build_recipe({"data": {"mean": [0.485, 0.456, 0.406]}})


def test_the_efficientnet_recipes_validate_offline():
    from packager.recipe import REPO_MODELS, load_recipe

    r = load_recipe(REPO_MODELS / "efficientnet-lite0.yaml")
    assert r.modality == "image" and r.teacher.weights.startswith("pkg:")
    assert r.data.image.mean == (127.0, 127.0, 127.0) and r.distill.enabled is False
    pruned = load_recipe(REPO_MODELS / "efficientnet-lite0-pruned.yaml")
    assert pruned.distill.student.arch == "pruned" and pruned.distill.student.width == 0.5


def test_every_profile_of_every_recipe_validates_and_a_gpu_one_asks_for_bf16_on_cuda():
    from packager.recipe import recipe_profiles

    distilled = {
        "minilm-l6.yaml",
        "minilm-l6-speed.yaml",
        "efficientnet-lite0-pruned.yaml",
        "tiny-lm.yaml",
        "qwen2.5-0.5b-instruct.yaml",
    }
    for path, _ in list_recipes():
        profiles = recipe_profiles(path)
        if Path(path).name in distilled:
            assert "gpu" in profiles, path
        for name in profiles:
            r = load_recipe(path, (), name)
            if name == "gpu":
                assert (r.distill.device, r.distill.precision) == ("cuda", "bf16"), path
                assert r.distill.to_json() != load_recipe(path).distill.to_json()


def test_a_profile_applies_before_set_and_an_unknown_one_is_one_line(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(
        "# r\ndistill: {epochs: 3}\n"
        "profiles:\n  big: {distill.epochs: 9, distill.precision: bf16, data.limit: 50}\n"
    )
    assert load_recipe(p).distill.epochs == 3  # a profile applies only when asked for
    big = load_recipe(p, (), "big")
    assert (big.distill.epochs, big.distill.precision, big.data.limit) == (9, "bf16", 50)
    assert load_recipe(p, ("distill.epochs=4",), "big").distill.epochs == 4
    with pytest.raises(RecipeError, match=r"no profile 'gpu' \(its profiles: big\)"):
        load_recipe(p, (), "gpu")
    p.write_text("# r\nprofiles:\n  big: {distill.epochs: [}\n")
    with pytest.raises(RecipeError):
        load_recipe(p, (), "big")
    p.write_text("# r\nprofiles: [distill.epochs]\n")
    with pytest.raises(RecipeError, match="profiles: expected NAME"):
        load_recipe(p)

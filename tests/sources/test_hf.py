"""hf: teacher sources: local folders, folders inside installed packages, clear offline errors."""

from __future__ import annotations

import json
import os
import sys

import pytest

from packager.config import TeacherConfig
from packager.errors import InputFileError
from packager.hashing import stamps
from packager.sources.hf import pooling_of, resolve


def _stamp(source: str) -> str:
    return stamps(TeacherConfig(source=source).input_paths())


def test_hf_folder_resolves_and_edits_change_its_stamp(tiny_classifier, tmp_path):
    assert resolve(f"hf:{tiny_classifier}") == tiny_classifier
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = _stamp(f"hf:{folder}")
    (folder / "config.json").write_text('{"a": 1}')
    assert _stamp(f"hf:{folder}") != before
    assert _stamp("builtin:digits-cnn") == ""


def test_hf_pkg_finds_a_folder_inside_an_installed_package(tmp_path, monkeypatch):
    pkg = tmp_path / "shipped_model_pkg"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "raise RuntimeError('resolving must not import the package')\n"
    )
    (pkg / "model/config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve("hf:pkg:shipped_model_pkg/model") == pkg / "model"
    assert "shipped_model_pkg" not in sys.modules
    with pytest.raises(InputFileError, match="package 'no_such_pkg_x' is not installed"):
        resolve("hf:pkg:no_such_pkg_x/model")


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (
            "hf:sentence-transformers/all-MiniLM-L6-v2",
            "not in the local Hugging Face cache.*`hf download sentence-transformers/all-MiniLM-"
            "L6-v2 --cache-dir .*`, or rerun with --allow-download",
        ),
        ("hf:/no/such/folder", "folder /no/such/folder not found"),
    ],
)
def test_missing_folders_and_hub_ids_are_one_line_errors(source, match, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(InputFileError, match=match) as err:
        resolve(source)
    assert "\n" not in str(err.value)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(InputFileError, match=r"no config\.json"):
        resolve(f"hf:{tmp_path}")


def test_pooling_comes_from_modules_json_or_defaults_to_mean_normalised(tiny_encoder, tmp_path):
    assert pooling_of(tiny_encoder) == {
        "pooling": "mean",
        "normalize": True,
        "from": "modules.json",
    }
    assert pooling_of(tmp_path)["pooling"] == "mean" and pooling_of(tmp_path)["normalize"]
    (tmp_path / "p").mkdir()
    (tmp_path / "p/config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (tmp_path / "modules.json").write_text(
        json.dumps([{"path": "p", "type": "sentence_transformers.models.Pooling"}])
    )
    assert pooling_of(tmp_path) == {"pooling": "cls", "normalize": False, "from": "modules.json"}
    (tmp_path / "p/config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(InputFileError, match="not supported"):
        pooling_of(tmp_path)


def test_teacher_labels_must_match_the_data_labels(text_root, tiny_classifier, tiny_texts_file):
    from tiny_models import tiny_text_recipe_dict

    from packager.errors import RecipeError
    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.progress import SilentReporter
    from packager.recipe import build_recipe

    recipe = build_recipe(
        tiny_text_recipe_dict(
            str(tiny_texts_file),
            str(tiny_classifier),
            data={"label_names": ["weather", "tech", "sports"]},  # the teacher's order reversed
        )
    )
    steps = [s for s in build_plan(recipe) if s.name in ("data", "teacher")]
    with pytest.raises(RecipeError, match=r"its labels are \['sports', 'tech', 'weather'\]"):
        run(steps, cache_dir=text_root / "cache", reporter=SilentReporter())

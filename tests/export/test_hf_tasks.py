"""Spec for packager/export/hf_tasks.py's `--task auto`: the library optimum detects from a
folder's files (and sentence-transformers for a bare modules.json), then the task."""

from __future__ import annotations

import json
import shutil

from packager.export.hf_tasks import ST, infer_task, library_of


def test_a_sentence_transformers_folder_is_feature_extraction(tiny_encoder, tmp_path):
    assert library_of(tiny_encoder) == ST  # modules.json
    plain = tmp_path / "plain"
    shutil.copytree(tiny_encoder, plain)
    (plain / "modules.json").unlink()
    assert library_of(plain) == "transformers"
    # optimum's own rule: a config_sentence_transformers.json (or sentence_*.json) says so
    (plain / "config_sentence_transformers.json").write_text(json.dumps({"__version__": {}}))
    assert library_of(plain) == ST
    assert infer_task(plain, ST) == "feature-extraction"


def test_a_transformers_folder_gets_the_task_of_its_architecture(tiny_classifier):
    assert library_of(tiny_classifier) == "transformers"
    assert infer_task(tiny_classifier, "transformers") == "text-classification"


def test_timm_folders_are_image_classification_as_optimum_decides():
    assert infer_task(None, "timm") == "image-classification"  # type: ignore[arg-type]

"""Modalities are declared once (packager.config.modalities): one rule gives a recipe's, the data
stage records it, and every stage either handles each registered modality or refuses it in words."""

from __future__ import annotations

import pytest
from tiny_models import tiny_recipe

import packager.stages  # noqa: F401  (registers every stage and its handler table)
from packager.config.modalities import MODALITIES, Modality, modality_of, register_modality
from packager.errors import RecipeError
from packager.stage import HANDLED, Handlers

# Every stage whose work differs by modality picks its half through a Handlers table.
BY_MODALITY = {"data", "teacher", "distill", "export", "quantize", "evaluate", "package", "sketch"}


def test_every_stage_handles_every_registered_modality_or_refuses_it_in_words():
    assert set(HANDLED) >= BY_MODALITY
    for stage, table in HANDLED.items():
        for name in MODALITIES:
            assert name in table, f"stage {stage} neither handles nor refuses {name} data"
            entry = table[name]
            assert callable(entry) or (isinstance(entry, str) and len(entry.split()) >= 5), (
                f"stage {stage}: {name} is refused without a sentence"
            )


def test_a_modality_a_stage_lacks_is_one_error_naming_the_stage():
    from packager.stages.sketch import _HANDLERS

    with pytest.raises(RecipeError, match=r"^sketch: edgepack auto searches array and text"):
        _HANDLERS("lm")
    table = Handlers("demo-stage", array=lambda: "ok")
    assert table("array")() == "ok"
    with pytest.raises(RecipeError, match=r"^demo-stage: it has no handler for audio data$"):
        table("audio")
    HANDLED.pop("demo-stage")


def test_the_one_rule_gives_each_recipe_its_modality():
    assert modality_of("image-classification", tiny_recipe().data) == "array"  # digits: 8x8 arrays
    image = tiny_recipe(data={"source": "photos", "image": {"size": 32, "resize": None}})
    assert image.modality == "image"
    assert modality_of("feature-extraction", tiny_recipe().data) == "text"
    assert modality_of("text-generation", tiny_recipe().data) == "lm"


def test_a_new_modality_is_declared_once_and_every_stage_is_asked_about_it():
    audio = Modality(
        "audio", "waveforms", preprocessing="audio", tasks=("audio-classification",),
        sources="a folder of .wav files", reads=lambda data: True,
    )  # fmt: skip
    register_modality(audio)
    try:
        missing = [s for s, table in HANDLED.items() if "audio" not in table]
        assert set(missing) >= BY_MODALITY  # what adding it means: each says yes or why not
        assert modality_of("audio-classification", tiny_recipe().data) == "audio"
    finally:
        MODALITIES.pop("audio")


def test_the_data_artifact_records_the_modality_every_later_stage_reads(tmp_path):
    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.progress import SilentReporter

    steps = [s for s in build_plan(tiny_recipe()) if s.name == "data"]
    res = run(steps, cache_dir=tmp_path, reporter=SilentReporter())
    assert steps[0].config.modality == "array" and res.artifact("data").modality == "array"


def test_each_stage_says_whether_it_handles_a_modality():
    from packager.stage import handled_by

    lm = handled_by("lm")
    assert lm["teacher"] and lm["distill"] and lm["quantize"] and lm["sketch"] is False
    # An API teacher's halves (packager.stages.teacher_api, distill_api) answer text only;
    # tokenize is a step of text and LM plans only (array and image data have no tokens).
    array = handled_by("array")
    assert all(
        v for stage, v in array.items() if not stage.endswith("(api)") and stage != "tokenize"
    )
    assert array["tokenize"] is False and handled_by("image")["tokenize"] is False
    assert handled_by("text")["tokenize"] and handled_by("lm")["tokenize"]
    assert array["teacher (api)"] is False and handled_by("image")["distill (api)"] is False
    assert handled_by("text")["teacher (api)"] and handled_by("lm")["distill (api)"]


@pytest.mark.parametrize(
    "data, says",
    [
        ({"views": 3}, "data.views is read for image data; this recipe's data is array"),
        (
            {"prompt_column": "p"},
            "data.prompt_column is read for lm data; this recipe's data is array",
        ),
    ],
)
def test_a_data_field_of_another_modality_is_refused_when_the_recipe_loads(data, says):
    with pytest.raises(RecipeError, match=says):
        tiny_recipe(data=data)

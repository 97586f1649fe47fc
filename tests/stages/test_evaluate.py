"""evaluate stage: every variant scored in onnxruntime; budgets fail loudly."""

from __future__ import annotations

import pytest
from tiny_models import tiny_recipe

from packager.errors import CheckFailed
from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def test_all_three_variants_are_scored_on_the_test_split(tiny_build):
    ev = tiny_build.artifact("evaluate")
    m = ev.meta["metrics"]
    assert set(m) == {"teacher_fp32", "student_fp32", "student_int8"}
    assert all(0.0 <= v["accuracy"] <= 1.0 and 0.0 <= v["macro_f1"] <= 1.0 for v in m.values())
    assert m["teacher_fp32"]["accuracy"] > 0.8
    assert "360 examples" in ev.meta["dataset"]
    drop = m["student_fp32"]["accuracy"] - m["student_int8"]["accuracy"]
    assert ev.meta["checks"]["quantized_accuracy_drop"] == pytest.approx(drop)


def test_accuracy_below_the_floor_fails_naming_number_and_tolerance(cache_dir):
    recipe = tiny_recipe(evaluate={"min_accuracy": 0.999})
    steps = [s for s in build_plan(recipe) if s.name not in ("bench", "package")]
    with pytest.raises(
        CheckFailed,
        match=r"^evaluate: student_int8 accuracy 0\.\d+ is below evaluate.min_accuracy = 0\.999",
    ):
        run(steps, cache_dir=cache_dir, reporter=SilentReporter())


def test_a_distilled_image_student_that_rarely_agrees_is_said_in_words():
    """The int8 budget compares the student with its own fp32 and can pass a useless student:
    the pruned EfficientNet-Lite0 student kept 96% of its fp32's answers and 8.7% of its
    teacher's. Below half, the build says so."""
    from packager.stages.evaluate import unfaithful_warnings

    low = {"student_fp32": {"agreement": 0.09}, "student_int8": {"agreement": 0.087,
           "top5_agreement": 0.19, "fp32_agreement": 0.96}}  # fmt: skip
    (warning,) = unfaithful_warnings(low)
    assert "has not learned its teacher" in warning and "8.7%" in warning and "19.0%" in warning
    ok = {"student_fp32": {"agreement": 0.9}, "student_int8": {"agreement": 0.88}}
    assert unfaithful_warnings(ok) == []
    assert unfaithful_warnings({"student_fp32": {"agreement": 0.2, "top5_agreement": 0.5}})

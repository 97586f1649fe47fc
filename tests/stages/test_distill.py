"""distill stage: a seeded student, smaller than its teacher, with its curve recorded."""

from __future__ import annotations

from tiny_models import tiny_recipe

from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def test_student_is_smaller_and_records_size_and_curve(tiny_build):
    d = tiny_build.artifact("distill")
    assert d.meta["params"] < d.meta["teacher_params"] / 10
    assert d.meta["size_bytes"] > 0
    assert 1 <= d.meta["best_epoch"] <= d.meta["epochs_run"] == len(d.meta["curve"])
    best = max(c["val_accuracy"] for c in d.meta["curve"])
    assert d.meta["val_accuracy"] == best  # the best checkpoint is the one kept


def test_distillation_is_deterministic_for_a_seed(tiny_build, tmp_path):
    recipe = tiny_recipe()
    steps = [s for s in build_plan(recipe) if s.name in ("data", "teacher", "distill")]
    again = run(steps, cache_dir=tmp_path, reporter=SilentReporter())
    assert again.artifact("teacher").id == tiny_build.artifact("teacher").id
    assert again.artifact("distill").id == tiny_build.artifact("distill").id


def test_early_stopping_stops_before_the_epoch_budget(tmp_path):
    recipe = tiny_recipe(distill={"epochs": 60, "patience": 1, "lr": 0.05})
    steps = [s for s in build_plan(recipe) if s.name in ("data", "teacher", "distill")]
    d = run(steps, cache_dir=tmp_path, reporter=SilentReporter()).artifact("distill")
    assert d.meta["epochs_run"] < 60

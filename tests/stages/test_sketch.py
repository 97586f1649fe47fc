"""sketch: a candidate student as distill would build it, untrained, exported and quantized,
so edgepack auto can cost its graph before any training."""

from __future__ import annotations

from tiny_models import tiny_recipe

from packager import pipeline
from packager.plans import build_plan, sketch_plan
from packager.progress import SilentReporter


def test_a_sketch_is_the_students_graph_without_training(cache_dir, tiny_build):
    recipe = tiny_recipe(distill={"student": {"arch": "cnn", "channels": [4], "hidden": 8}})
    res = pipeline.run(sketch_plan(recipe), cache_dir=cache_dir, reporter=SilentReporter())
    sketch = res.artifact("sketch")
    assert sketch.meta["trained"] is False and sketch.meta["params"] > 0
    assert "distill" not in [s.step.name for s in res.steps]
    assert res.artifact("quantize").file().stat().st_size > 0
    # the teacher and data are the build's: nothing upstream of the sketch ran again
    assert {"data", "teacher"}.isdisjoint(res.ran)


def test_a_sketch_answers_in_the_teachers_classes_as_distill_does(cache_dir, tiny_build):
    """The costed graph is the graph distill trains: its output width is the teacher's, the
    same kwargs the trained student was built with."""
    recipe = tiny_recipe(distill={"student": {"arch": "cnn", "channels": [4], "hidden": 8}})
    sketch = pipeline.run(sketch_plan(recipe), cache_dir=cache_dir, reporter=SilentReporter())
    steps = build_plan(recipe)
    names = [s.name for s in steps]
    steps = steps[: names.index("distill") + 1]
    built = pipeline.run(steps, cache_dir=cache_dir, reporter=SilentReporter())
    assert sketch.artifact("sketch").meta["kwargs"] == built.artifact("distill").meta["kwargs"]

"""sketch: a candidate student as distill would build it, untrained, exported and quantized,
so edgepack auto can cost its graph before any training."""

from __future__ import annotations

from tiny_models import tiny_recipe

from packager import pipeline
from packager.plans import sketch_plan
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

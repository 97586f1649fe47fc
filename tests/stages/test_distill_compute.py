"""The distill step of every modality on a device and in a precision: bf16 autocast on this CPU
trains tiny array, text, image and language-model students; precision and the device's kind
are in the key of every step they change, loader workers and checkpoint intervals are not (and
do not change the student); the compute is recorded in the manifest."""

from __future__ import annotations

import json
import zipfile

import pytest

from packager.nets.device import cpu_has_bf16
from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter
from packager.recipe import build_recipe

pytestmark = pytest.mark.slow
BF16 = {"device": "cpu", "precision": "bf16"}


def _until(recipe, cache, last="distill"):
    steps = build_plan(recipe)
    names = [s.name for s in steps]
    return run(steps[: names.index(last) + 1], cache_dir=cache, reporter=SilentReporter())


def _recipes(request, tmp_path) -> dict:
    """A tiny recipe of each modality, as a function of the distill section's extra fields."""
    from tiny_images import image_recipe_dict, write_image_folder
    from tiny_models import tiny_lm_recipe_dict, tiny_recipe_dict, tiny_text_recipe_dict

    text_root = request.getfixturevalue("text_root")
    encoder = request.getfixturevalue("tiny_encoder")
    request.getfixturevalue("tiny_texts_file")
    lm_teacher, lm_texts = (
        request.getfixturevalue(f) for f in ("tiny_lm_teacher", "tiny_lm_texts_file")
    )
    images = write_image_folder(tmp_path / "photos", 40)
    text_distill = {"losses": {"embedding_cosine": 1.0, "embedding_mse": 1.0}, "epochs": 2}
    return {
        "array": lambda d: tiny_recipe_dict(distill=d),
        "text": lambda d: tiny_text_recipe_dict(
            str(text_root / "topics.jsonl"),
            str(encoder),
            task="feature-extraction",
            distill={**text_distill, **d},
            quantize={"metric": "cosine"},
        ),
        "image": lambda d: image_recipe_dict(str(images), distill={"epochs": 3, **d}),
        "lm": lambda d: tiny_lm_recipe_dict(
            str(lm_texts), str(lm_teacher), distill={"epochs": 2, "max_steps": None, **d}
        ),
    }


@pytest.mark.parametrize("modality", ["array", "text", "image", "lm"])
def test_bf16_autocast_on_the_cpu_trains_a_student_of_every_modality(modality, request, tmp_path):
    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions (bf16 is refused on it: test_device)")
    make = _recipes(request, tmp_path)[modality]
    bf16 = _until(build_recipe(make(BF16)), tmp_path / "cache").artifact("distill")
    c = bf16.meta["compute"]
    assert (c["device"], c["precision"], c["processes"]) == ("cpu", "bf16", 1)
    assert c["items"] > 0 and c["throughput"] > 0 and c["seconds"] > 0
    losses = [e["train_loss"] for e in bf16.meta["curve"] if "train_loss" in e]
    assert losses[-1] < losses[0], losses  # it learns
    fp32 = _until(build_recipe(make({"device": "cpu"})), tmp_path / "cache").artifact("distill")
    assert fp32.meta["compute"]["precision"] == "fp32"
    losses = [e.get("train_loss") for e in bf16.meta["curve"]]
    # autocast took effect: not the fp32 run's losses (the kept student may be either's best)
    assert [e.get("train_loss") for e in fp32.meta["curve"]] != losses


def test_precision_and_the_devices_kind_are_keyed_and_workers_are_not(request, tmp_path):
    make = _recipes(request, tmp_path)

    def keys(kind, **d):
        from packager.stage import stage_for

        out = {}
        for s in build_plan(build_recipe(make[kind]({"device": "cpu", **d}))):
            out[s.name] = (stage_for(s.config).name, s.config.key_json())
        return out

    base = keys("text")
    for changed, steps in (
        ({"precision": "bf16"}, {"teacher_outputs", "distill"}),
        ({"nproc": 2}, {"distill"}),  # a teacher pass computes the same rows on any count
        ({"workers": 3, "checkpoint_steps": 7, "restarts": 4}, set()),
    ):
        other = keys("text", **changed)
        assert {n for n in base if base[n] != other[n]} - {"package"} == steps, changed
    lm, lm16 = keys("lm"), keys("lm", precision="bf16")
    assert {n for n in lm if lm[n] != lm16[n]} - {"package"} == {"distill"}
    array, array16 = keys("array"), keys("array", precision="bf16")
    # the builtin teacher is trained in the build: its key holds the compute too
    assert {n for n in array if array[n] != array16[n]} - {"package"} == {"teacher", "distill"}


def test_loader_workers_give_the_same_image_student(request, tmp_path):
    make = _recipes(request, tmp_path)["image"]
    a = _until(build_recipe(make({"device": "cpu"})), tmp_path / "a").artifact("distill")
    b = _until(build_recipe(make({"device": "cpu", "workers": 2})), tmp_path / "b")
    assert b.artifact("distill").id == a.id


def test_the_manifest_records_where_and_how_fast_the_student_trained(tiny_build):
    with zipfile.ZipFile(tiny_build.package_path) as zf:
        method = json.loads(zf.read("manifest.json"))["provenance"]["method"]
    c = method["compute"]
    assert c["device"] == "cpu" and c["precision"] == "fp32" and c["processes"] == 1
    assert c["device_name"] and c["unit"] == "examples/s" and c["throughput"] > 0
    assert c["seconds"] > 0 and c["items"] > 0
    assert method["precision"] == "fp32" and method["nproc"] == 1


def test_a_teacher_fine_tuned_in_the_build_trains_on_the_builds_precision(request, tmp_path):
    """teacher.train.fine_tune trains an hf: classifier in the build: its step is keyed by the
    precision (a teacher only loaded is not), and bf16 autocast fine-tunes it on this CPU."""
    from tiny_models import tiny_text_recipe_dict

    text_root, encoder = (request.getfixturevalue(f) for f in ("text_root", "tiny_encoder"))
    request.getfixturevalue("tiny_texts_file")

    def recipe(fine_tune: bool, **distill):
        train = {"fine_tune": fine_tune, "epochs": 1, "lr": 0.003}
        return build_recipe(
            tiny_text_recipe_dict(
                str(text_root / "topics.jsonl"),
                str(encoder),
                teacher={"train": train},
                distill={"device": "cpu", **distill},
            )
        )

    def teacher_key(r):
        return next(s for s in build_plan(r) if s.name == "teacher").config.key_json()

    bf16 = {"precision": "bf16"}
    assert teacher_key(recipe(True)) != teacher_key(recipe(True, **bf16))
    assert teacher_key(recipe(False)) == teacher_key(recipe(False, **bf16))
    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions (bf16 is refused on it: test_device)")
    tuned = _until(recipe(True, **bf16), tmp_path / "cache", "teacher").artifact("teacher")
    assert tuned.meta["trained"] and 0.0 <= tuned.meta["fine_tune_val_accuracy"] <= 1.0


def test_edgepack_autos_trials_train_on_the_recipes_compute():
    """auto's trials are plans of the same recipe (--set distill.precision=bf16 reaches them):
    a trial's teacher and distill steps carry the compute, and a sketch's teacher is the
    trial's (the same key), so the search trains and costs what the build will."""
    from tiny_models import tiny_recipe

    from packager.plans import sketch_plan, trial_plan

    recipe = tiny_recipe(distill={"device": "cpu", "precision": "bf16"})
    trial = {s.name: s.config for s in trial_plan(recipe)}
    assert trial["distill"].compute.precision == trial["teacher"].compute.precision == "bf16"
    sketch = {s.name: s.config for s in sketch_plan(recipe)}
    assert sketch["teacher"].key_json() == trial["teacher"].key_json()

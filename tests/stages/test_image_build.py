"""The build on image data, end to end on tiny synthetic images (tests/tiny_images.py): the
package records image preprocessing and replays sample image files; the distilled student
learns the teacher; students are smaller than their teacher and answer in its classes;
`distill: none` ships the teacher; a pruned student keeps the teacher's architecture."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from tiny_images import image_recipe_dict, write_image_folder

from packager.errors import RecipeError
from packager.pipeline import build
from packager.plans import build_plan
from packager.progress import SilentReporter
from packager.recipe import build_recipe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("img") / "photos", 90)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("img-cache")


def _build(images, cache, tmp_path, **sections):
    sections.setdefault("package", {})["out_dir"] = str(tmp_path / "dist")
    recipe = build_recipe(image_recipe_dict(str(images), **sections))
    return build(recipe, cache_dir=cache, reporter=SilentReporter())


def _manifest(result) -> dict:
    with zipfile.ZipFile(result.package_path) as zf:
        return json.loads(zf.read("manifest.json"))


def test_an_image_package_records_its_preprocessing_and_replays_its_image_files(
    images, cache, tmp_path
):
    import edgepack_runtime

    result = _build(images, cache, tmp_path)
    m = _manifest(result)
    assert m["schema_version"] == "1.3"
    pre = m["preprocessing"]
    assert pre["type"] == "image" and pre["resize"] == {"shorter": 36, "interpolation": "bilinear"}
    assert pre["crop"] == {"height": 32, "width": 32} and pre["mean"] == [0.485, 0.456, 0.406]
    assert [p.rsplit(".", 1)[1] for p in m["samples"]["images"]] == ["png"] * 3
    check = edgepack_runtime.load(result.package_path).check_samples()
    assert check.ok and check.max_abs_diff["input (png)"] == 0.0
    assert set(m["metrics"]["student_int8"]) >= {
        "agreement",
        "top5_agreement",
        "kl",
        "fp32_agreement",
    }


def test_the_distilled_student_agrees_with_the_teacher_far_more_than_a_fresh_one(
    images, cache, tmp_path
):
    result = _build(images, cache, tmp_path, distill={"epochs": 6})
    student = result.artifact("distill").meta
    assert student["val_agreement"] >= student["start_val_agreement"] + 0.3
    assert (
        student["params"] < student["teacher_params"] and student["macs"] < student["teacher_macs"]
    )


def test_a_student_that_is_not_smaller_than_its_teacher_is_refused(images, cache, tmp_path):
    big = {"student": {"arch": "cnn", "channels": [64, 128], "hidden": 256}}
    with pytest.raises(RecipeError, match="not smaller than its teacher"):
        _build(images, cache, tmp_path, distill=big)
    allowed = _build(images, cache, tmp_path, distill={**big, "epochs": 1, "allow_larger": True})
    assert allowed.artifact("distill").meta["params"] > allowed.artifact("teacher").meta["params"]


def test_output_classes_come_from_the_teacher_not_the_labels(tmp_path, cache):
    labeled = write_image_folder(tmp_path / "labeled", 45, classes=3)  # labels 0..2
    teacher = {"kwargs": {"classes": 7}}
    result = _build(labeled, cache, tmp_path, teacher=teacher, distill={"epochs": 1})
    m = _manifest(result)
    assert len(m["postprocessing"]["labels"]) == 7
    with zipfile.ZipFile(result.package_path) as zf, zf.open("samples/logits.npy") as f:
        assert np.load(f).shape[1] == 7
    assert result.artifact("teacher").meta["output_classes"] == 7
    assert result.artifact("distill").meta["output_classes"] == 7


def test_distill_none_ships_the_teacher_quantized(images, cache, tmp_path):
    recipe = build_recipe(image_recipe_dict(str(images), distill="none"))
    names = [s.name for s in build_plan(recipe)]
    assert "distill" not in names and "export" not in names
    result = _build(images, cache, tmp_path, distill="none")
    m = _manifest(result)
    assert m["provenance"]["student_init"]["kind"] == "teacher"
    assert m["provenance"]["method"]["type"] == "none"
    assert m["quantization"]["mode"] == "static"
    # the build's summary says what shipped (a teacher has no compression ratio to print)
    import io

    from rich.console import Console

    from packager.cli.render import print_build

    out = io.StringIO()
    print_build(Console(file=out, width=200), result)
    assert "the teacher itself (no distillation)" in out.getvalue()


def test_a_pruned_student_is_the_teacher_narrowed_and_exports(images, cache, tmp_path):
    pytest.importorskip("torch_pruning")
    result = _build(
        images, cache, tmp_path, distill={"student": {"arch": "pruned", "width": 0.5}, "epochs": 2}
    )
    student = result.artifact("distill").meta
    assert student["shapes"] and student["factory"] == "tiny_models:make_colour_teacher"
    assert student["params"] < student["teacher_params"] / 2
    assert student["macs"] < student["teacher_macs"] / 2
    assert result.artifact("export").meta["parity_max_abs_diff"] < 1e-4


def test_edgepack_run_prints_the_top_five_labels_of_an_image_file(images, cache, tmp_path):
    from click.testing import CliRunner

    from packager.cli import cli

    result = _build(images, cache, tmp_path)
    photo = sorted(images.glob("*.png"))[0]
    res = CliRunner().invoke(cli, ["run", str(result.package_path), "--image", str(photo)])
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith(f"{photo}: ") and line.count("(") == 5  # 5 labels with scores
    bad = CliRunner().invoke(cli, ["run", str(result.package_path), "--image", "nope.png"])
    assert bad.exit_code == 2 and "nope.png: file not found" in bad.output


def test_evaluate_min_agreement_gates_an_unlabeled_image_student(images, cache, tmp_path):
    from packager.errors import CheckFailed

    with pytest.raises(CheckFailed, match=r"agreement .* is below evaluate\.min_agreement = 1"):
        _build(images, cache, tmp_path, distill={"epochs": 1}, evaluate={"min_agreement": 1.0})

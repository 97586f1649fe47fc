"""What the cache promises: it never reuses what it did not write, and every input a recipe names
by path is in the key of the step that reads it (by content)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from tiny_models import make_tiny_net, tiny_recipe

from packager.pipeline import build, run
from packager.plans import build_plan
from packager.progress import Reporter, SilentReporter


class _Recorder(Reporter):
    def __init__(self) -> None:
        super().__init__(verbose=False, live=False)
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        if message.startswith("cache entry"):  # stages warn too (speed checks): not these tests'
            self.warnings.append(message)


def _flip(path: Path, at: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def warm_cache(tiny_build, cache_dir, tmp_path) -> Path:
    """A private copy of the session cache, in which the tiny build is complete."""
    dest = tmp_path / "cache"
    shutil.copytree(cache_dir, dest)
    return dest


def _rebuild(cache: Path, tmp_path: Path):
    reporter = _Recorder()
    recipe = tiny_recipe(package={"out_dir": str(tmp_path / "dist")})
    return build(recipe, cache_dir=cache, reporter=reporter), reporter.warnings


def _members(pkg: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(pkg) as zf:
        return {n: zf.read(n) for n in ("model.onnx", "samples/input.npy", "samples/logits.npy")}


def test_a_flipped_byte_in_a_cached_model_is_detected_and_rebuilt(tiny_build, warm_cache, tmp_path):
    export = tiny_build.artifact("export")
    _flip(warm_cache / export.path.relative_to(export.path.parents[1]) / "model.onnx", 200)
    result, warnings = _rebuild(warm_cache, tmp_path)
    assert result.ran == ["export"]  # rebuilt to the same bytes: nothing downstream reruns
    assert len(warnings) == 1
    assert "cache entry export/" in warnings[0] and "model.onnx does not match" in warnings[0]
    assert _members(result.package_path) == _members(tiny_build.package_path)
    from packager.verify import verify_package

    assert all(r.ok for r in verify_package(result.package_path))


def test_a_flipped_byte_in_the_cached_package_is_not_published(tiny_build, warm_cache, tmp_path):
    pkg = tiny_build.artifact("package")
    cached = warm_cache / pkg.path.relative_to(pkg.path.parents[1]) / pkg.meta["file"]
    _flip(cached, len(cached.read_bytes()) // 2)
    result, warnings = _rebuild(warm_cache, tmp_path)
    assert result.ran == ["package"] and len(warnings) == 1
    assert "digits-tiny.edgepack does not match its recorded sha256" in warnings[0]
    assert _members(result.package_path) == _members(tiny_build.package_path)


@pytest.mark.parametrize(
    "damage", ["truncated", "empty", "not-an-object", "deleted-file", "no-record", "record-a-dir"]
)
def test_a_damaged_entry_is_a_miss_not_a_crash(tiny_build, warm_cache, tmp_path, damage):
    quant = tiny_build.artifact("quantize")
    entry = warm_cache / quant.path.relative_to(quant.path.parents[1])
    record = entry / "artifact.json"
    if damage == "truncated":
        record.write_text(record.read_text()[: len(record.read_text()) // 2])
    elif damage == "empty":
        record.write_text("")
    elif damage == "not-an-object":
        record.write_text("[1, 2]")
    elif damage == "no-record":  # the next commit's rename onto the folder failed forever
        record.unlink()
    elif damage == "record-a-dir":
        record.unlink()
        record.mkdir()
    else:
        (entry / "quantize.json").unlink()
    result, warnings = _rebuild(warm_cache, tmp_path)
    assert result.ran[0] == "quantize" and len(warnings) == 1 and "quantize/" in warnings[0]
    assert (
        _members(result.package_path)["samples/input.npy"]
        == _members(tiny_build.package_path)["samples/input.npy"]
    )
    again, warnings = _rebuild(warm_cache, tmp_path)
    assert again.ran == [] and warnings == []  # repaired for good


def _statuses(recipe, cache, names):
    steps = [s for s in build_plan(recipe) if s.name in names]
    res = run(steps, cache_dir=cache, reporter=SilentReporter())
    return {r.step.name: r.status for r in res.steps}


def test_editing_a_python_teachers_weights_rebuilds_the_teacher(tmp_path):
    net = make_tiny_net()
    weights = tmp_path / "w.safetensors"
    save_file(net.state_dict(), str(weights))
    teacher = {
        "source": "python:tiny_models:make_tiny_net",
        "weights": str(weights),
        "kwargs": {},
        "train": {},
    }
    recipe = tiny_recipe(teacher=teacher)
    assert _statuses(recipe, tmp_path / "c", ("data", "teacher"))["teacher"] == "done"
    assert _statuses(recipe, tmp_path / "c", ("data", "teacher"))["teacher"] == "cached"
    weights.touch()  # touched, not changed: still the same content, still cached
    assert _statuses(recipe, tmp_path / "c", ("data", "teacher"))["teacher"] == "cached"
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    save_file(net.state_dict(), str(weights))
    assert _statuses(recipe, tmp_path / "c", ("data", "teacher"))["teacher"] == "done"


def test_editing_a_labels_file_rebuilds_the_data(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    np.save(tmp_path / "x.npy", d.data[:300].astype(np.float32))
    np.save(tmp_path / "y.npy", d.target[:300])
    data = {"source": str(tmp_path / "x.npy"), "labels_file": str(tmp_path / "y.npy")}
    recipe = tiny_recipe(data={**data, "limit": None, "sample_shape": [1, 8, 8]})
    assert _statuses(recipe, tmp_path / "c", ("data",))["data"] == "done"
    assert _statuses(recipe, tmp_path / "c", ("data",))["data"] == "cached"
    np.save(tmp_path / "y.npy", (d.target[:300] + 1) % 10)
    assert _statuses(recipe, tmp_path / "c", ("data",))["data"] == "done"


def test_editing_a_target_profile_reruns_the_bench(tiny_build, warm_cache, tmp_path):
    profiles = tmp_path / "targets"
    profiles.mkdir()
    src = Path(__file__).resolve().parents[2] / "packager/bench/targets/rpi4.yaml"
    text = src.read_text().replace("name: rpi4", "name: myboard")
    (profiles / "myboard.yaml").write_text(text)
    bench = {"targets": ["myboard"], "targets_dir": str(profiles), "runs": 2, "warmup": 1}
    recipe = tiny_recipe(bench=bench)
    names = [s.name for s in build_plan(recipe) if s.name != "package"]
    assert _statuses(recipe, warm_cache, names)["bench"] == "done"
    assert _statuses(recipe, warm_cache, names)["bench"] == "cached"
    (profiles / "myboard.yaml").write_text(text.replace("cores: 4", "cores: 2"))
    assert "cores: 2" in (profiles / "myboard.yaml").read_text()
    assert _statuses(recipe, warm_cache, names)["bench"] == "done"


@pytest.mark.slow
def test_switching_the_task_over_one_teacher_reuses_nothing_task_dependent(
    tiny_classifier, tiny_texts_file, tmp_path
):
    """text-classification then feature-extraction over the same teacher folder and data: the
    second build's teacher, student and package are its own, and its output is an embedding."""
    from tiny_models import tiny_text_recipe_dict

    from packager.recipe import build_recipe

    outputs = {}
    for task, extra in (
        ("text-classification", {}),
        (
            "feature-extraction",
            {"distill": {"losses": {"embedding_cosine": 1.0, "embedding_mse": 1.0}}},
        ),
    ):
        recipe = build_recipe(
            tiny_text_recipe_dict(
                str(tiny_texts_file),
                str(tiny_classifier),
                name="switch",
                task=task,
                package={"out_dir": str(tmp_path / task)},
                quantize={"metric": "cosine" if task == "feature-extraction" else "accuracy"},
                **extra,
            )
        )
        result = build(recipe, cache_dir=tmp_path / "c", reporter=SilentReporter())
        status = {r.step.name: r.status for r in result.steps}
        with zipfile.ZipFile(result.package_path) as zf:
            outputs[task] = json.loads(zf.read("manifest.json"))["outputs"][0]["name"]
        if task == "feature-extraction":
            assert status["data"] == "cached"
            assert {status[s] for s in ("teacher", "distill", "evaluate", "package")} == {"done"}
    assert outputs == {"text-classification": "logits", "feature-extraction": "sentence_embedding"}

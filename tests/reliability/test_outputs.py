"""Nothing lost: an output never replaces an input, a model onnxruntime cannot load is never
written as a result, and a full or read-only disk is one line with nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from cli_helpers import edgepack, edgepack_on_tmpfs, needs_mount, one_error_line
from onnx import helper
from tiny_models import outlier_mlp_onnx


@pytest.fixture
def model(tmp_path) -> Path:
    return outlier_mlp_onnx(tmp_path / "m.onnx")


def test_quantize_refuses_to_write_over_its_input(model, tmp_path):
    before = model.read_bytes()
    line = one_error_line(edgepack("quantize", model, "-o", model, "--cache-dir", tmp_path / "c"))
    assert "refusing to overwrite an input" in line and str(model) in line
    assert model.read_bytes() == before


def test_quantize_refuses_an_output_that_is_a_hard_link_of_its_input(model, tmp_path):
    alias = tmp_path / "alias.onnx"
    os.link(model, alias)
    before = model.read_bytes()
    proc = edgepack("quantize", model, "-o", alias, "--cache-dir", tmp_path / "c")
    assert "refusing to overwrite an input" in one_error_line(proc)
    assert proc.returncode == 2 and model.read_bytes() == before


def test_quantize_refuses_a_sidecar_that_would_replace_the_calibration_data(model, tmp_path):
    import numpy as np

    calib = tmp_path / "q.quantize.json"  # an odd name, but the user's file
    calib.write_text("[]")
    np.save(tmp_path / "x.npy", np.zeros((4, 16), np.float32))
    proc = edgepack("quantize", model, "-o", tmp_path / "q.onnx", "--mode", "dynamic",
                    "--eval", calib, "--cache-dir", tmp_path / "c")  # fmt: skip
    assert "refusing to overwrite an input" in one_error_line(proc)
    assert calib.read_text() == "[]" and not (tmp_path / "q.onnx").exists()


def test_bench_refuses_to_write_its_json_over_the_model(model, tmp_path):
    before = model.read_bytes()
    proc = edgepack("bench", model, "--runs", "1", "--json", model, "--cache-dir", tmp_path / "c")
    assert "refusing to overwrite an input" in one_error_line(proc)
    assert model.read_bytes() == before


def _unloadable(path: Path, kind: str) -> Path:
    m = onnx.load(str(outlier_mlp_onnx(path)))
    if kind == "opset99":
        m.opset_import[0].version = 99
    else:
        out = m.graph.output[0]
        m.graph.node.append(helper.make_node("Frobnicate", [out.name], ["y2"], domain="x.y"))
        m.graph.output.append(helper.make_tensor_value_info("y2", onnx.TensorProto.FLOAT, [1]))
        m.opset_import.append(helper.make_opsetid("x.y", 1))
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("kind", ["opset99", "custom-op"])
def test_a_model_onnxruntime_cannot_load_is_an_error_and_writes_nothing(tmp_path, kind):
    src = _unloadable(tmp_path / f"{kind}.onnx", kind)
    out = tmp_path / "q.onnx"
    for mode in ("dynamic", "fp16"):
        proc = edgepack("quantize", src, "-o", out, "--mode", mode, "--cache-dir", tmp_path / "c")
        line = one_error_line(proc)
        assert str(src) in line and "onnxruntime cannot load" in line
        assert ".edgepack" not in line and "onnxruntime_src" not in line
        assert not out.exists() and list(tmp_path.glob(".q.onnx*")) == []


def test_a_quantized_model_that_does_not_load_fails_the_stage(model, tmp_path, monkeypatch):
    """Even when the input loads, the result must: a quantizer writing a broken graph is caught."""
    from dataclasses import replace

    from packager.errors import StageError
    from packager.pipeline import run
    from packager.plans import quantize_plan
    from packager.progress import SilentReporter
    from packager.quantize.schemes import SCHEMES, quantize_config

    def broken(self, dst, exclude):
        m = onnx.load(str(self.graph))
        m.opset_import[0].version = 99
        onnx.save(m, str(dst))

    monkeypatch.setitem(SCHEMES, "dynamic", replace(SCHEMES["dynamic"], quantize=broken))
    steps = quantize_plan(model, quantize_config(mode="dynamic", speed_check=False))
    with pytest.raises(StageError, match=r"^quantize: the dynamic model does not load in onnx"):
        run(steps, cache_dir=tmp_path / "c", reporter=SilentReporter())


@needs_mount
@pytest.mark.parametrize("options", ["size=4k", "ro"])
def test_quantize_into_a_full_or_read_only_folder_is_one_line(model, tmp_path, options):
    out = tmp_path / "out"
    proc = edgepack_on_tmpfs(
        out, options, "quantize", model, "-o", out / "q.onnx", "--cache-dir", tmp_path / "c",
        leftovers=True,
    )  # fmt: skip
    line = one_error_line(proc)
    why = "No space left on device" if options.startswith("size") else "Read-only file system"
    assert why in line and str(out) in line
    assert proc.leftovers == []  # listed while the tmpfs was still mounted: nothing leaked


@needs_mount
@pytest.mark.parametrize("options", ["size=24k", "ro"])
def test_a_build_publishing_to_a_full_or_read_only_out_dir_is_one_line(
    tiny_build, cache_dir, tmp_path, options
):
    import shutil

    import yaml
    from tiny_models import tiny_recipe_dict

    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    out = tmp_path / "dist"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("# tiny\n" + yaml.safe_dump(tiny_recipe_dict(package={"out_dir": str(out)})))
    proc = edgepack_on_tmpfs(out, options, "build", recipe, "--cache-dir", cache, "-q")
    line = one_error_line(proc)
    why = "No space left on device" if options.startswith("size") else "Read-only file system"
    assert why in line and str(out) in line


@needs_mount
def test_a_full_cache_disk_is_one_line(tmp_path):
    import yaml
    from tiny_models import tiny_recipe_dict

    recipe = tmp_path / "r.yaml"
    recipe.write_text("# tiny\n" + yaml.safe_dump(tiny_recipe_dict()))
    cache = tmp_path / "cache"
    proc = edgepack_on_tmpfs(cache, "size=64k", "build", recipe, "--cache-dir", cache, "-q")
    assert "No space left on device" in one_error_line(proc)


def test_a_build_never_publishes_over_its_own_recipe(tiny_build, cache_dir, tmp_path):
    from tiny_models import tiny_recipe

    from packager.errors import InputFileError
    from packager.pipeline import build
    from packager.progress import SilentReporter

    recipe_file = tmp_path / tiny_build.package_path.name  # the recipe named like its package
    recipe_file.write_text("name: digits-tiny\n")
    recipe = tiny_recipe(package={"out_dir": str(tmp_path)})
    with pytest.raises(InputFileError, match="is the input recipe"):
        build(recipe, cache_dir=cache_dir, reporter=SilentReporter(), recipe_file=recipe_file)
    assert recipe_file.read_text() == "name: digits-tiny\n"


def test_bench_refuses_html_and_json_at_one_path(model, tmp_path):
    out = tmp_path / "r.json"
    line = one_error_line(edgepack("bench", model, "--json", out, "--html", out))
    assert "--html" in line and not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("run", "PKG", "--top", "0"),
        ("run", "PKG", "--prompt", "hi", "--seed", "-1"),
        ("run", "PKG", "--prompt", "hi", "--temperature", "nan"),
        ("auto", "RECIPE", "--target", "host", "--latency-ms", "nan"),
        ("auto", "RECIPE", "--target", "host", "--latency-ms", "1", "--min-metric", "inf"),
    ],
)
def test_out_of_range_numbers_are_one_line_before_any_work(tmp_path, args):
    args = [str(tmp_path / "x.edgepack") if a == "PKG" else a for a in args]
    args = [str(tmp_path / "r.yaml") if a == "RECIPE" else a for a in args]
    assert "Invalid value" in one_error_line(edgepack(*args))


def test_labels_that_are_ids_not_classes_are_refused(tmp_path):
    import numpy as np

    from packager.config import DataConfig
    from packager.data.array import load_splits
    from packager.errors import RecipeError

    x = np.zeros((40, 1, 4, 4), np.float32)
    y = np.arange(40, dtype=np.int64) * 10**12  # would be a label list of 10^13 names
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(RecipeError, match="labels go up to"):
        load_splits(DataConfig(source=str(tmp_path / "d.npz")))


def test_quantize_publishes_its_files_all_or_none(model, tmp_path):
    out = tmp_path / "o.onnx"
    (tmp_path / "o.quantize.json").mkdir()  # the sidecar cannot be written
    line = one_error_line(edgepack("quantize", model, "-o", out, "--mode", "dynamic"))
    assert "o.quantize.json" in line
    assert not out.exists()  # no model without its record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "o.quantize.json"]


def test_publishing_over_a_folder_leaves_the_old_sidecar_alone(tmp_path):
    """publish_files renames sidecars first and the main output last: a main output name that
    is a folder would fail after the old sidecar had been replaced, so it is refused first."""
    from packager.errors import OutputError
    from packager.files import publish_files

    (tmp_path / "new.onnx").write_bytes(b"model")
    (tmp_path / "new.json").write_text("{}")
    (tmp_path / "o.onnx").mkdir()
    (tmp_path / "o.json").write_text('{"old": true}')
    pairs = [
        (tmp_path / "new.onnx", tmp_path / "o.onnx"),
        (tmp_path / "new.json", tmp_path / "o.json"),
    ]
    with pytest.raises(OutputError, match=r"o\.onnx: is a folder"):
        publish_files(pairs)
    assert (tmp_path / "o.json").read_text() == '{"old": true}'
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["new.json", "new.onnx", "o.json", "o.onnx"]
    (tmp_path / "o.onnx").rmdir()
    (tmp_path / "new.json").unlink()  # now the second copy fails: the first is not published
    with pytest.raises(OutputError, match=r"o\.json: cannot write it"):
        publish_files(pairs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.onnx", "o.json"]


@pytest.mark.parametrize("external_data", [False, True])
def test_export_publishes_the_model_and_its_record_all_or_none(
    tmp_path, monkeypatch, external_data
):
    from click.testing import CliRunner

    from packager.cli import cli
    from packager.export import external

    if external_data:
        monkeypatch.setattr(external, "EXTERNAL_DATA_BYTES", 256)  # model.onnx + model.onnx.data
    out = tmp_path / "out" / "m.onnx"
    (tmp_path / "out" / "m.export.json").mkdir(parents=True)  # the record cannot be written
    res = CliRunner().invoke(
        cli,
        ["export", "python:tiny_models:make_tiny_cnn", "-o", str(out), "--input",
         "x:batch,3,16,16", "--cache-dir", str(tmp_path / "c")],
    )  # fmt: skip
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert res.exit_code == 1 and "m.export.json: is a folder" in line, res.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.export.json"]  # no model, no data


@needs_mount
@pytest.mark.parametrize("options", ["size=4k", "ro"])
def test_keygen_on_a_full_or_read_only_disk_is_one_line_and_leaves_no_key(tmp_path, options):
    keys = tmp_path / "keys"  # 4k: the private key fits, its public half does not
    proc = edgepack_on_tmpfs(keys, options, "keygen", keys / "k", leftovers=True)
    line = one_error_line(proc)
    why = "No space left on device" if options.startswith("size") else "Read-only file system"
    assert why in line and str(keys / "k") in line
    assert proc.leftovers == []  # neither key, not even an empty one, and no temporary name

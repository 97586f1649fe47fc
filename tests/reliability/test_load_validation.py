"""Validation at load for what would fail later (docs/guarantees.md): values that become file
names are checked against the file system's limits (a name at most 255 bytes, a path 4096)
when the recipe loads or the command starts, exit 2, before any work; a model's tensor names
never become paths in a package."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import yaml
from cli_helpers import edgepack, one_error_line
from tiny_models import outlier_mlp_onnx, tiny_recipe_dict


def _recipe(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe_dict(**sections)))
    return path


def test_a_300_character_recipe_name_fails_when_the_recipe_loads(tmp_path):
    recipe = _recipe(tmp_path, name="n" * 300)
    proc = edgepack("build", recipe, "--cache-dir", tmp_path / "c", timeout=120)
    line = one_error_line(proc)
    assert proc.returncode == 2 and "name" in line and "at most 200 characters" in line, line
    assert "(302 characters)" in line and "n" * 100 not in line  # named, not printed whole
    assert not (tmp_path / "c").exists()  # nothing ran


def test_an_out_dir_the_file_system_cannot_hold_fails_when_the_recipe_loads(tmp_path):
    recipe = _recipe(tmp_path, package={"out_dir": str(tmp_path / ("d" * 300))})
    proc = edgepack("build", recipe, "--dry-run", "--cache-dir", tmp_path / "c", timeout=120)
    line = one_error_line(proc)
    assert proc.returncode == 2 and "package.out_dir" in line and "over the 255" in line, line


@pytest.mark.parametrize(
    "command",
    [
        ["quantize", "{model}", "-o", "{long}"],
        ["bench", "{model}", "--runs", "1", "--json", "{long}"],
        ["keygen", "{long}"],
    ],
    ids=["quantize -o", "bench --json", "keygen"],
)
def test_an_output_name_over_255_bytes_is_refused_before_any_work(command, tmp_path):
    model = outlier_mlp_onnx(tmp_path / "m.onnx")
    long = tmp_path / ("o" * 260 + ".onnx")
    argv = [a.format(model=model, long=long) for a in command]
    proc = edgepack(*argv, "--cache-dir", tmp_path / "c") if command[0] != "keygen" else (
        edgepack(*argv))  # fmt: skip
    line = one_error_line(proc)
    assert proc.returncode == 2 and "over the file system's 255" in line, line
    assert not (tmp_path / "c").exists()  # refused before the runner started


def test_tensor_names_that_are_no_file_names_never_become_paths(tmp_path):
    """A model whose output is named "../../escape" (or 300 characters long) is packaged with its
    samples under samples/output_N.npy; the manifest maps the names to them."""
    import numpy as np

    from packager.package import array_samples, sample_file

    model = onnx.load(str(outlier_mlp_onnx(tmp_path / "m.onnx")))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = ["../../escape" if o == old else o for o in node.output]
    model.graph.output[0].name = "../../escape"
    onnx.save(model, str(tmp_path / "evil.onnx"))
    tree = tmp_path / "tree"
    tree.mkdir()
    dim = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    x = np.zeros((2, dim), np.float32)
    samples = array_samples(tree, tmp_path / "evil.onnx", x, x)
    assert samples["outputs"] == {"../../escape": "samples/output_0.npy"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.onnx", "m.onnx", "tree"]
    assert (tree / "samples" / "output_0.npy").is_file()
    assert sample_file("output", "x" * 300, 1) == "samples/output_1.npy"
    assert sample_file("output", "logits", 0) == "samples/logits.npy"
    assert sample_file("input", "past_key_values.0.key", 2) == "samples/past_key_values.0.key.npy"

"""Every combination a scheme does not take is one `error:` line when the recipe loads (exit 2),
before any step runs: `edgepack build RECIPE --set ...` as a user types it, with a cache folder
that must stay empty."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner
from tiny_models import tiny_lm_recipe_dict, tiny_recipe_dict

from packager.cli import cli


def _build(tmp_path, recipe: dict, *sets: str):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    args = ["build", str(path), "--cache-dir", str(tmp_path / "cache")]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: recipe "), res.output
    return lines[0]


RULES = [
    # (--set overrides on the tiny digits recipe, what the line says)
    (
        ["quantize.embeddings=int8"],
        'quantize.embeddings = "int8" is not allowed (mode static): '
        "mode static takes embeddings auto, fp32, int4 (int8 tables: mode dynamic or int4)",
    ),
    (["quantize.mode=fp16"], "quantize.calib_samples applies to mode static, not fp16"),
    (["quantize={mode: fp16, format: qdq}"], "quantize.format applies to mode static, not fp16"),
    (
        ["quantize={mode: fp16, block_size: 64}"],
        "quantize.block_size applies to mode int4, not fp16",
    ),
    (["quantize={mode: none, embeddings: int4}"], "mode none takes embeddings auto, fp32"),
    (
        ["quantize={mode: dynamic, embedding_block_size: 64}"],
        "quantize.embedding_block_size applies to embeddings = int4 only",
    ),
    (
        ["quantize={mode: dynamic, int4_symmetric: false}"],
        "quantize.int4_symmetric applies to int4 blocks: mode = int4 or embeddings = int4",
    ),
    (
        ["quantize.max_float_macs=0.2"],
        "quantize.max_float_macs shapes the accuracy search, which "
        "runs only with quantize.max_drop",
    ),
    (["quantize.max_trials=4"], "quantize.max_trials shapes the accuracy search"),
    (["quantize.max_trials=16"], None),  # its default: harmless, and a recorded config reads back
    (
        ["quantize={mode: dynamic, max_drop: 0.1, min_speedup: 1.2, speed_check: false}"],
        "quantize.min_speedup is timed by the speed check: set speed_check",
    ),
    (["quantize.mode=int3"], "quantize.mode = \"int3\" is not allowed: Input should be 'static'"),
    (["auto.quantize=[dynamic, int3]"], "auto.quantize: int3 is not a quantization mode"),
    (["quantize={mode: int4, block_size: 24}"], "block_size must be a power of two"),
]


@pytest.mark.parametrize("sets, says", [r for r in RULES if r[1]])
def test_a_combination_a_scheme_does_not_take_is_refused_at_load(tmp_path, sets, says):
    assert says in _build(tmp_path, tiny_recipe_dict(), *sets)


def test_a_field_at_its_default_is_no_combination_and_a_recorded_section_reads_back():
    from packager.recipe import build_recipe

    recipe = build_recipe(tiny_recipe_dict(quantize={"max_trials": 16}))
    again = build_recipe(recipe.to_json())  # every field written out, as a manifest records it
    assert again.quantize == recipe.quantize


def test_shipping_the_quantized_model_of_mode_none_is_refused_before_any_step(tmp_path):
    path = tmp_path / "r.yaml"
    recipe = {**tiny_recipe_dict(), "quantize": {"mode": "none"}}
    path.write_text(yaml.safe_dump(recipe))
    res = CliRunner().invoke(cli, ["build", str(path), "--cache-dir", str(tmp_path / "c")])
    assert (
        res.exit_code == 2 and "package.model = quantized ships the quantized model" in res.output
    )
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.json"))


def _lm(tmp_path, **quantize):
    data = tmp_path / "t.txt"
    data.write_text("a b c\n" * 10)
    return tiny_lm_recipe_dict(str(data), str(tmp_path / "teacher"), quantize=quantize)


def test_a_language_model_takes_no_calibrated_scheme(tmp_path):
    line = _build(tmp_path, _lm(tmp_path), "quantize={mode: static}")
    assert "quantize.mode static does not serve lm data" in line
    assert "it takes: dynamic, fp16, int4, none" in line


def test_a_language_model_has_no_accuracy_search(tmp_path):
    line = _build(tmp_path, _lm(tmp_path), "quantize.max_drop=0.1")
    assert "quantize.max_drop: a language model has no accuracy search" in line


def test_a_static_quantize_without_calibration_data_stops_before_any_step(transformer, tmp_path):
    res = CliRunner().invoke(
        cli,
        ["quantize", str(transformer["model"]), "-o", str(tmp_path / "o.onnx"), "--mode",
         "static", "--cache-dir", str(tmp_path / "c")],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "quantize.calib is required for mode=static (--calib DATA)" in res.output
    assert not (tmp_path / "c").exists()


def test_an_old_spelling_is_read_with_a_warning(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe_dict(package={"model": "int8"})))
    proc = subprocess.run(
        [sys.executable, "-m", "packager.cli", "build", str(path), "--dry-run"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning: package.model: int8 is now spelled quantized") == 1

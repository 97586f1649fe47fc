"""Quantization schemes are declared once (packager.quantize.registry): a new one, registered in
this one file, is in the recipe schema, the quantize command's choices and options, auto's space,
and quantizes a model through the command a user types; nothing else lists the modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import onnx
import pytest
from click.testing import CliRunner
from pydantic import Field

from packager.cli import cli
from packager.config import QuantizeConfig
from packager.quantize.registry import SCHEMES, Scheme, registered


class MatMulInt8Config(QuantizeConfig):
    """mode: matmul8: int8 weight-only MatMuls (a throwaway scheme for this test)."""

    mode: Literal["matmul8"] = "matmul8"
    matmul8_block: int = Field(
        64, ge=16, description="weights per scale block (a field of its own)"
    )


def _quantize(q, dst: Path, exclude: list[str]) -> None:
    from packager.quantize.nbits import nbits

    model = nbits(
        onnx.load(str(q.graph)), 8, q.cfg.matmul8_block, True, 0, nodes_to_exclude=exclude
    )
    onnx.save(model, str(dst))


THROWAWAY = Scheme(
    config=MatMulInt8Config,
    precision="int8",
    summary="int8 weight-only MatMuls in blocks",
    quantize=_quantize,
    modalities=("array", "text"),
    format="MatMulNBits",
    ops=lambda cfg: {"MatMul"},
    op_classes={"MatMulNBits": "gemm_int4"},
    gemm_to_matmul=True,
    searched={"array": 9},
)


@pytest.fixture
def throwaway():
    with registered(THROWAWAY) as scheme:
        yield scheme
    assert "matmul8" not in SCHEMES


def test_a_scheme_registered_in_one_file_is_in_the_recipe_schema(throwaway):
    from packager.recipe import Recipe, build_recipe

    schema = json.dumps(Recipe.model_json_schema())
    assert '"const": "matmul8"' in schema and "matmul8_block" in schema
    recipe = build_recipe({"quantize": {"mode": "matmul8", "matmul8_block": 32}})
    assert type(recipe.quantize) is MatMulInt8Config and recipe.quantize.matmul8_block == 32


def test_a_registered_scheme_is_a_choice_and_its_fields_are_options_of_quantize(throwaway):
    res = CliRunner().invoke(cli, ["quantize", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert "matmul8" in res.output and "int8 weight-only MatMuls in blocks" in res.output
    assert "--matmul8-block INTEGER" in res.output and "(mode matmul8)" in res.output


def test_a_registered_scheme_is_in_the_auto_space_of_the_modalities_it_names(throwaway):
    from tiny_models import tiny_recipe

    from packager.search.space import build_space

    space = build_space(tiny_recipe(quantize={"mode": "static"}), cores=2)
    assert space.modes[-1] == "matmul8"  # rank 9: after static, dynamic, fp16, none
    overrides = next(c for c in space.candidates if c.mode == "matmul8").overrides()
    assert 'quantize={"calib_samples": 64' not in " ".join(overrides)  # static's own: left out
    assert any(o.startswith('quantize={"mode": "matmul8"}') for o in overrides)


def test_a_registered_scheme_quantizes_through_the_command(throwaway, transformer, tmp_path):
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(
        cli,
        ["quantize", str(transformer["model"]), "-o", str(out), "--mode", "matmul8",
         "--matmul8-block", "16", "--no-speed-check", "--cache-dir", str(tmp_path / "c")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    nodes = onnx.load(str(out)).graph.node
    bits = {
        a.i for n in nodes if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "bits"
    }
    assert bits == {8}
    report = json.loads((tmp_path / "m.quantize.json").read_text())
    assert report["mode"] == "matmul8" and report["precision"] == "int8"


def test_its_fields_are_refused_under_another_mode(throwaway):
    from packager.errors import RecipeError
    from packager.recipe import build_recipe

    with pytest.raises(
        RecipeError, match=r"quantize\.matmul8_block applies to mode matmul8, not dynamic"
    ):
        build_recipe({"quantize": {"mode": "dynamic", "matmul8_block": 32}})


def test_every_registered_scheme_declares_what_is_true_of_it():
    from packager.config.modalities import MODALITIES

    assert list(SCHEMES) == ["static", "dynamic", "fp16", "int4", "none"]
    for mode, s in SCHEMES.items():
        assert s.mode == mode and s.summary and s.precision in ("int8", "fp16", "int4", "fp32")
        assert set(s.modalities) <= set(MODALITIES) and set(s.searched) <= set(s.modalities)
        assert s.format_of(s.config()) and callable(s.quantize)
    assert SCHEMES["static"].calibrates and not SCHEMES["dynamic"].calibrates
    assert "lm" not in SCHEMES["static"].modalities
    assert {"lm", "text"} <= set(SCHEMES["int4"].modalities)


def test_a_registered_scheme_is_in_the_generated_recipe_reference(throwaway):
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "docs_reference", root / "scripts/docs_reference.py"
    )
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    page = docs.recipe_reference()
    assert "## `quantize` (mode: `matmul8`)" in page
    assert (
        "| `matmul8_block` | `int` | `64` | weights per scale block (a field of its own) |" in page
    )
    assert "int8 weight-only MatMuls (a throwaway scheme for this test)" in page

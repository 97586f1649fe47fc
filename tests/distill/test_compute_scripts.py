"""The compute scripts as a user runs them, on tiny models: scripts/gpu_distill.sh (the real
recipe's tiny-profile dry run, and a whole tiny build printing its time and probe cosine) and
scripts/bench_precision.py (bf16 against fp32, its table)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from packager.nets.device import cpu_has_bf16

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "EDGEPACK_PYTHON": sys.executable}


def test_gpu_distill_dry_runs_the_minilm_recipes_tiny_profile_on_a_cpu(tmp_path):
    out = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts/gpu_distill.sh"),
            "--profile",
            "tiny",
            "--dry-run",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "teacher_outputs" in out.stdout and "distill" in out.stdout
    assert "dry run of models/minilm-l6.yaml --profile tiny: nothing built" in out.stdout


def _tiny_recipe(tmp_path, request) -> Path:
    from tiny_models import tiny_text_recipe_dict

    text_root, encoder = (request.getfixturevalue(f) for f in ("text_root", "tiny_encoder"))
    request.getfixturevalue("tiny_texts_file")
    data = tiny_text_recipe_dict(
        str(text_root / "topics.jsonl"),
        str(encoder),
        name="tiny-encoder",
        task="feature-extraction",
        quantize={"metric": "cosine"},
        distill={"losses": {"embedding_cosine": 1.0, "embedding_mse": 1.0}, "epochs": 2},
        package={"out_dir": str(tmp_path / "dist")},
        bench={"enabled": False},
    )
    data["profiles"] = {"tiny": {"distill.device": "cpu", "distill.batch_size": 32}}
    path = tmp_path / "tiny.yaml"
    path.write_text("# a tiny encoder recipe with a tiny profile\n" + yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_gpu_distill_builds_a_recipe_and_prints_its_time_and_probe_cosine(tmp_path, request):
    recipe = _tiny_recipe(tmp_path, request)
    out = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts/gpu_distill.sh"),
            "--recipe",
            str(recipe),
            "--profile",
            "tiny",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--set",
            f"package.out_dir={tmp_path / 'elsewhere'}",  # read back where the build put it
            "-q",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{tmp_path / 'elsewhere' / 'tiny-encoder.edgepack'}: built in " in out.stdout
    assert "--profile tiny" in out.stdout
    assert "distill: " in out.stdout and ", fp32, 1 process(es): " in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith("probe cosine "))
    assert 0 < float(line.split()[2].rstrip(",")) <= 1.0001


@pytest.mark.slow
def test_bench_precision_prints_bf16_against_fp32(tmp_path, request):
    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions (bf16 is refused on it: test_device)")
    recipe = _tiny_recipe(tmp_path, request)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/bench_precision.py"),
            "--recipe",
            str(recipe),
            "--limit",
            "100",
            "--rounds",
            "2",
            "--steps",
            "2",
            "--cache-dir",
            str(tmp_path / "cache"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [x for x in out.stdout.splitlines() if x.startswith(("| fp32 |", "| bf16 |"))]
    assert len(rows) == 2 and "bf16 vs fp32: distillation " in out.stdout

"""DDP: distilling a causal LM under torchrun on 2 CPU processes (gloo, packager.distill.ddp)
gives the student a single process gives with the same global batch, within 1e-5 on every
weight (float sums in another order: the gradients are averaged over ranks instead of over one
batch)."""

from __future__ import annotations

import pytest

from packager.distill import ddp
from packager.distill.lm import distill as lm_distill
from packager.progress import SilentReporter

TOLERANCE = 1e-5


def _job(tmp_path, teacher, tokens, out):
    return {
        "teacher": str(teacher),
        "tokens": str(tokens),
        "topk": None,
        "out": str(tmp_path / out),
        "spec": {"arch": "causal-lm", "num_layers": 2, "intermediate_size": 32},
        "settings": {
            "weights": {"logits_kd": 1.0, "label_ce": 0.5},
            "temperature": 2.0,
            "epochs": 1,
            "batch_size": 8,
            "lr": 0.003,
            "seed": 1,
            "max_steps": 4,
        },
        "threads": 1,
        "compute": {"device": "cpu", "precision": "fp32", "workers": 0},
    }


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path, tiny_lm_build):
    from safetensors.torch import load_file

    teacher = tiny_lm_build.artifact("teacher").file()
    data = tiny_lm_build.artifact("tokenize").path
    one = lm_distill.run(_job(tmp_path, teacher, data, "one"))
    entry = "packager.distill.lm.distill:run"
    two = ddp.run_job(entry, _job(tmp_path, teacher, data, "two"), 2, tmp_path, SilentReporter())
    assert two["compute"]["processes"] == 2 and two["compute"]["unit"] == "tokens/s"
    assert one["steps"] == two["steps"] == 4
    a = load_file(str(tmp_path / "one" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    t = load_file(str(teacher / "model.safetensors"))
    moved = float((a["lm_head.weight"] - t["lm_head.weight"]).abs().max())
    assert worst <= TOLERANCE < moved  # equal within the tolerance, and training did move them


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused(tmp_path, tiny_lm_build):
    from packager.errors import RecipeError
    from packager.nets.loop import Run

    job = _job(
        tmp_path,
        tiny_lm_build.artifact("teacher").file(),
        tiny_lm_build.artifact("tokenize").path,
        "x",
    )
    job["settings"]["batch_size"] = 7
    with pytest.raises(RecipeError, match="divide by nproc 2"):
        lm_distill.run(job, Run(rank=0, world=2))

"""generate stage: the teacher's completions of the training prompts (sequence-level KD), a
cached step that reruns when the teacher or the prompts change and not otherwise."""

from __future__ import annotations

import json

from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter

GEN = {"enabled": True, "prompts": 12, "max_new_tokens": 6, "batch": 4, "n": 2, "seed": 3}


def _recipe(data, teacher, **sections):
    from tiny_models import tiny_lm_recipe_dict

    from packager.recipe import build_recipe

    return build_recipe(tiny_lm_recipe_dict(str(data), str(teacher), generate=GEN, **sections))


def _run(recipe, cache):
    steps = [
        s for s in build_plan(recipe) if s.name in ("provenance", "data", "teacher", "generate")
    ]
    res = run(steps, cache_dir=cache, reporter=SilentReporter())
    return res, {r.step.name: r.status for r in res.steps}


def test_generate_writes_n_seeded_completions_per_prompt_with_their_producer(
    tmp_path, tiny_lm_teacher, tiny_lm_texts_file
):
    res, _ = _run(_recipe(tiny_lm_texts_file, tiny_lm_teacher), tmp_path / "cache")
    art = res.artifact("generate")
    lines = [json.loads(x) for x in art.file().read_text().splitlines()]
    assert len(lines) == 24 and art.meta["completions"] == 24 and art.meta["prompts"] == 12
    assert {r["generated_by"] for r in lines} == {f"hf:{tiny_lm_teacher}"}
    assert all(r["prompt"] and isinstance(r["completion"], str) for r in lines)
    again, _ = _run(_recipe(tiny_lm_texts_file, tiny_lm_teacher), tmp_path / "other-cache")
    assert again.artifact("generate").file().read_text() == art.file().read_text()  # seeded


def test_generate_reruns_when_the_teacher_or_the_prompts_change_and_not_otherwise(
    tmp_path, tiny_lm_teacher, tiny_lm_texts_file
):
    from tiny_models import tiny_causal_lm_folder, write_tiny_lm_texts

    cache = tmp_path / "cache"
    _run(_recipe(tiny_lm_texts_file, tiny_lm_teacher), cache)
    # Another learning rate or student: generate is cached.
    recipe = _recipe(tiny_lm_texts_file, tiny_lm_teacher, distill={"lr": 0.01, "max_steps": 3})
    assert _run(recipe, cache)[1]["generate"] == "cached"
    # Other prompts (the data file's content): it reruns.
    other = write_tiny_lm_texts(tmp_path / "other.jsonl", n=400, seed=5)
    assert _run(_recipe(other, tiny_lm_teacher), cache)[1]["generate"] == "done"
    # Another teacher (new weights in its folder): it reruns.
    teacher = tiny_causal_lm_folder(tmp_path / "t2", "llama", seed=7)
    assert _run(_recipe(tiny_lm_texts_file, teacher), cache)[1]["generate"] == "done"

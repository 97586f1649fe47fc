"""teacher_outputs stage: the teacher's outputs on the training texts, once per teacher, corpus
and tokenizer settings; distillation epochs read them instead of running the teacher."""

from __future__ import annotations

import numpy as np
import pytest

from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter

ENCODER = {
    "distill": {"losses": {"embedding_cosine": 1.0, "embedding_mse": 1.0}, "epochs": 2},
    "quantize": {"metric": "cosine"},
}


def _recipe(text_root, teacher, corpus=None, **sections):
    from tiny_models import tiny_text_recipe_dict

    from packager.recipe import build_recipe

    merged = {**ENCODER, **sections}
    return build_recipe(
        tiny_text_recipe_dict(
            str(corpus or text_root / "topics.jsonl"),
            str(teacher),
            name="cached",
            task="feature-extraction",
            **merged,
        )
    )


def _run(recipe, cache, until="distill"):
    names = [s.name for s in build_plan(recipe)]
    steps = [s for s in build_plan(recipe) if names.index(s.name) <= names.index(until)]
    res = run(steps, cache_dir=cache, reporter=SilentReporter())
    return res, {r.step.name: r.status for r in res.steps}


def test_more_than_one_epoch_trains_from_the_cached_teacher_outputs(
    text_root, tiny_encoder, tiny_texts_file, tmp_path, monkeypatch
):
    from packager.distill.text import trainer as text_trainer

    calls = {"teacher": 0, "student": 0}
    real = text_trainer.forward

    def counting(model, *args, **kw):
        frozen = not any(p.requires_grad for p in model.parameters())
        calls["teacher" if frozen else "student"] += 1
        return real(model, *args, **kw)

    monkeypatch.setattr(text_trainer, "forward", counting)
    recipe = _recipe(text_root, tiny_encoder)
    assert "teacher_outputs" in [s.name for s in build_plan(recipe)]
    res, status = _run(recipe, tmp_path / "c")
    assert status["teacher_outputs"] == "done" and calls["student"] > 10
    assert calls["teacher"] == 0  # not one teacher forward in two epochs of training
    art = res.artifact("teacher_outputs")
    outputs = np.load(art.file())
    assert outputs.shape == (art.meta["texts"], 32) and art.meta["bytes_per_text"] == 64
    # row i is the teacher's (unnormalised, pooled) output on training text i
    from packager.data.text import load_tokenizer, read_split
    from packager.nets.text import predict
    from packager.sources.hf import load_model

    teacher = res.artifact("teacher")
    texts, _ = read_split(res.artifact("data").path, "train")
    model = load_model(teacher.file(), "feature-extraction")
    ref = predict(model, load_tokenizer(teacher.file(), 32), texts, "feature-extraction",
                  {"pooling": "mean", "normalize": False})  # fmt: skip
    assert np.allclose(outputs.astype(np.float32), ref, atol=2e-3, rtol=2e-3)


def test_the_cache_is_kept_for_another_student_and_rebuilt_for_another_teacher_or_corpus(
    text_root, tiny_encoder, tiny_classifier, tiny_texts_file, tmp_path
):
    from tiny_models import write_tiny_texts

    cache = tmp_path / "c"
    _run(_recipe(text_root, tiny_encoder), cache)
    lr = {**ENCODER["distill"], "lr": 0.002}
    _, status = _run(_recipe(text_root, tiny_encoder, distill=lr), cache)
    assert status["teacher_outputs"] == "cached" and status["distill"] == "done"
    _, status = _run(_recipe(text_root, tiny_classifier), cache)  # another teacher
    assert status["teacher_outputs"] == "done"
    other = write_tiny_texts(tmp_path / "other.jsonl", n=300, seed=5)  # another corpus
    _, status = _run(_recipe(text_root, tiny_encoder, corpus=other), cache)
    assert status["teacher_outputs"] == "done"
    data = {"source": str(text_root / "topics.jsonl"), "max_length": 16}  # other tokenization
    _, status = _run(_recipe(text_root, tiny_encoder, data=data), cache)
    assert status["teacher_outputs"] == "done"


def test_one_epoch_or_token_level_losses_run_without_it(text_root, tiny_encoder, tiny_texts_file):
    one = _recipe(text_root, tiny_encoder, distill={**ENCODER["distill"], "epochs": 1})
    assert "teacher_outputs" not in [s.name for s in build_plan(one)]
    tokens = {"losses": {"embedding_cosine": 1.0, "hidden_mse": 1.0}, "epochs": 3}
    assert "teacher_outputs" not in [
        s.name for s in build_plan(_recipe(text_root, tiny_encoder, distill=tokens))
    ]
    from packager.errors import RecipeError

    with pytest.raises(RecipeError, match=r"cache_teacher = on caches the teacher's output only"):
        _recipe(text_root, tiny_encoder, distill={**tokens, "cache_teacher": "on"})

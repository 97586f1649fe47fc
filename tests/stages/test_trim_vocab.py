"""trim_vocab stage: a text build whose student ships a word table and tokenizer cut to the
pieces of its training text, measured like any student, and reproduced by the runtime."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest


@pytest.fixture(scope="module")
def trimmed_build(text_root, tiny_encoder, tiny_texts_file):
    from tiny_models import tiny_text_recipe_dict, write_tiny_texts

    from packager.pipeline import build
    from packager.progress import SilentReporter
    from packager.recipe import build_recipe

    sports = write_tiny_texts(text_root / "sports-only.jsonl", n=200, seed=3, topics=["sports"])
    recipe = build_recipe(
        tiny_text_recipe_dict(
            str(sports),
            str(tiny_encoder),
            name="trimmed",
            task="feature-extraction",
            distill={"losses": {"embedding_cosine": 1.0}, "trim_vocab": 1},
            quantize={"metric": "cosine"},
            package={"out_dir": str(text_root / "trimmed")},
        )
    )
    return build(recipe, cache_dir=text_root / "cache", reporter=SilentReporter())


def test_the_student_keeps_only_the_pieces_of_its_training_text(trimmed_build):
    trim = trimmed_build.artifact("trim_vocab")
    assert trim.meta["vocab_before"] == 128 and trim.meta["vocab"] < 40
    assert trim.meta["params"] < trimmed_build.artifact("distill").meta["params"]
    vocab = json.loads((trim.file() / "tokenizer.json").read_text())["model"]["vocab"]
    assert (
        "goal" in vocab
        and "robot" not in vocab
        and sorted(vocab.values()) == list(range(trim.meta["vocab"]))
    )


def test_the_package_ships_the_trimmed_tokenizer_and_its_samples_reproduce(trimmed_build):
    from packager.verify import verify_package

    pkg = trimmed_build.package_path
    with zipfile.ZipFile(pkg) as zf:
        vocab = json.loads(zf.read("tokenizer.json"))["model"]["vocab"]
        manifest = json.loads(zf.read("manifest.json"))
    assert len(vocab) == trimmed_build.artifact("trim_vocab").meta["vocab"]
    assert all(r.ok for r in verify_package(pkg)), verify_package(pkg)
    m = manifest["metrics"]["student_int8"]
    assert 0 <= m["probe_cosine"] <= 1  # the trimmed student, measured on the probe too


def test_in_vocabulary_text_maps_to_the_same_vectors_as_before(trimmed_build):
    """Sentences of kept pieces: the trimmed student's token vectors are the untrimmed ones."""
    import torch

    from packager.data.text import encode, load_tokenizer
    from packager.sources.hf import load_model

    full, cut = (
        trimmed_build.artifact("distill").file(),
        trimmed_build.artifact("trim_vocab").file(),
    )
    texts = ["the goal and the match", "a team saw the coach win"]
    outs = []
    for folder in (full, cut):
        model = load_model(folder, "feature-extraction")
        feeds = encode(load_tokenizer(folder, 32), texts, ["input_ids", "attention_mask"])
        with torch.no_grad():
            outs.append(
                model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
            )
    assert np.allclose(outs[0].numpy(), outs[1].numpy(), atol=1e-6)

"""tokenize stage: the training split's token ids once per tokenizer and corpus; batches made
from them are the ids the tokenizer itself gives, and another student reuses them."""

from __future__ import annotations

import numpy as np

from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def _recipe(text_root, teacher, **distill):
    from tiny_models import tiny_text_recipe_dict

    from packager.recipe import build_recipe

    return build_recipe(
        tiny_text_recipe_dict(str(text_root / "topics.jsonl"), str(teacher), distill=distill)
    )


def _until_tokenize(recipe, cache):
    steps = [s for s in build_plan(recipe) if s.name in ("data", "teacher", "tokenize")]
    return run(steps, cache_dir=cache, reporter=SilentReporter())


def test_collated_tokens_are_the_tokenizers_own_padded_ids(
    text_root, tiny_classifier, tiny_texts_file, tmp_path
):
    from packager.data.text import encode, load_tokenizer, read_split
    from packager.data.tokens import Tokens, collate

    res = _until_tokenize(_recipe(text_root, tiny_classifier), tmp_path)
    art = res.artifact("tokenize")
    texts, labels = read_split(res.artifact("data").path, "train")
    tokens = Tokens(art.path, art.meta["pad_id"])
    assert len(tokens) == art.meta["texts"] == len(texts)
    assert int(tokens.lengths.sum()) == art.meta["tokens"]
    assert np.array_equal(tokens.labels, labels)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    tok = load_tokenizer(res.artifact("teacher").file(), 32)
    for rows in ([0, 1, 2], [5, 40, 7, 99]):  # texts of unequal lengths: padded to the longest
        got = collate([tokens.row(i) for i in rows], tokens.pad_id, names)
        want = encode(tok, [texts[i] for i in rows], names)
        for name in names:
            assert np.array_equal(got[name].numpy(), want[name]), name


def test_another_student_reuses_the_tokens_and_a_shorter_max_length_does_not(
    text_root, tiny_classifier, tiny_texts_file, tmp_path
):
    first = _until_tokenize(_recipe(text_root, tiny_classifier), tmp_path)
    other = _recipe(text_root, tiny_classifier, lr=0.002, epochs=3)
    again = {r.step.name: r.status for r in _until_tokenize(other, tmp_path).steps}
    assert again["tokenize"] == "cached"
    from tiny_models import tiny_text_recipe_dict

    from packager.recipe import build_recipe

    shorter = build_recipe(
        tiny_text_recipe_dict(
            str(text_root / "topics.jsonl"), str(tiny_classifier), data={"max_length": 8}
        )
    )
    res = _until_tokenize(shorter, tmp_path)
    assert {r.step.name: r.status for r in res.steps}["tokenize"] == "done"
    short = res.artifact("tokenize")
    assert int(short.meta["tokens"]) < int(first.artifact("tokenize").meta["tokens"])
    assert np.diff(np.load(short.path / "offsets.npy")).max() == 8  # truncated as configured


def test_a_language_models_text_is_packed_once_with_the_teachers_completions_first(
    tiny_lm_build,
):
    from packager.data.lm import pack
    from packager.data.tokens import sequences
    from packager.distill.lm.distill import training_texts
    from packager.sources.lm import encoder, lm_tokenizer

    art = tiny_lm_build.artifact("tokenize")
    teacher = tiny_lm_build.artifact("teacher")
    generated = tiny_lm_build.artifact("generate").file()
    seqs = sequences(art.path)
    eos = teacher.meta["eos_token_ids"][0]
    texts = training_texts(tiny_lm_build.artifact("data").path, generated)
    want = np.stack(list(pack(texts, encoder(lm_tokenizer(teacher.file())), eos, 32)))
    assert seqs.shape == want.shape == (art.meta["sequences"], 32)
    assert np.array_equal(seqs, want)
    # the distill and teacher_logits steps read these, not the text
    assert tiny_lm_build.artifact("distill").meta["steps"] > 0

"""Vocabulary trimming: kept pieces keep their vectors, the tokenizer is renumbered to match,
and a word of unseen pieces falls back to smaller pieces, never silently to other vectors."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from packager.distill.text.vocab import count_pieces, kept_ids, rewrite_tokenizer, trim_model
from packager.errors import RecipeError


def _tokenizer_json(folder):
    return json.loads((folder / "tokenizer.json").read_text())


def test_rewritten_ids_name_the_same_pieces_and_specials_move_with_them(tiny_classifier):
    from tokenizers import Tokenizer

    spec = _tokenizer_json(tiny_classifier)
    vocab = spec["model"]["vocab"]
    counts = Counter({vocab["goal"]: 3, vocab["rain"]: 1, vocab["the"]: 5})
    kept = kept_ids(spec, counts, min_count=2)
    names = {i: p for p, i in vocab.items()}
    assert {names[i] for i in kept} >= {"goal", "the", "[PAD]", "[CLS]", "[SEP]", "[UNK]"}
    assert "rain" not in {names[i] for i in kept}  # seen once, under min_count
    new = Tokenizer.from_str(json.dumps(rewrite_tokenizer(spec, kept)))
    old = Tokenizer.from_str(json.dumps(spec))
    a, b = old.encode("the goal"), new.encode("the goal")
    assert a.tokens == b.tokens and b.ids == [kept.index(i) for i in a.ids]
    assert new.encode("rain").tokens == ["[CLS]", "[UNK]", "[SEP]"]  # no piece left for it


def test_trimmed_rows_are_the_original_vectors(tiny_classifier):
    from packager.sources.hf import load_model

    model = load_model(tiny_classifier, "text-classification")
    table = model.get_input_embeddings().weight.detach().clone()
    kept = [0, 1, 2, 3, 7, 9, 20]
    trim_model(model, kept)
    assert model.config.vocab_size == 7
    assert torch.equal(model.get_input_embeddings().weight, table[kept])


def test_counts_skip_special_tokens(tiny_classifier):
    from packager.data.text import load_tokenizer

    tok = load_tokenizer(tiny_classifier, 16)
    counts = count_pieces(tok, [["goal goal rain"]])
    vocab = _tokenizer_json(tiny_classifier)["model"]["vocab"]
    assert counts == Counter({vocab["goal"]: 2, vocab["rain"]: 1})


def test_only_wordpiece_can_be_trimmed():
    with pytest.raises(RecipeError, match="needs a WordPiece tokenizer"):
        kept_ids({"model": {"type": "BPE", "vocab": {}}}, Counter(), 1)

"""Static-embedding students (packager.distill.text.static): model2vec's table on the teacher's own
ids with special tokens weighted 0, and tuning that brings the mean of a text's vectors closer
to the teacher's sentence embedding."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("model2vec")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    from tiny_models import tiny_bert_folder

    return tiny_bert_folder(tmp_path_factory.mktemp("enc"), task="feature-extraction", seed=4)


def test_the_table_is_on_the_teachers_ids_and_ignores_special_tokens(encoder):
    from packager.distill.text import static as S

    student = S.distill_table(encoder, 1e-4)
    vocab = __import__("json").loads((encoder / "tokenizer.json").read_text())["model"]["vocab"]
    assert student.table.shape == (len(vocab), 32)
    for token in ("[CLS]", "[SEP]", "[PAD]"):
        assert student.weights[vocab[token]] == 0
    assert student.weights[vocab["rain"]] == 1 and np.abs(student.table[vocab["rain"]]).sum() > 0
    ids = np.array([[vocab["[CLS]"], vocab["rain"], vocab["[SEP]"], 0]])
    v = student.embed(ids, np.array([[1, 1, 1, 0]]))
    want = student.table[vocab["rain"]] / np.linalg.norm(student.table[vocab["rain"]])
    assert np.allclose(v[0], want, atol=1e-6)  # the special tokens and padding add nothing


def test_tuning_moves_the_table_toward_the_teachers_embeddings(encoder):
    from tiny_models import tiny_texts

    from packager.data.text import encode, load_tokenizer
    from packager.distill.text import static as S
    from packager.nets.text import predict
    from packager.sources.hf import load_model

    tok = load_tokenizer(encoder, 32)
    texts = [r["text"] for r in tiny_texts(240, seed=3)]
    info = {"pooling": "mean", "normalize": True}
    target = predict(
        load_model(encoder, "feature-extraction"), tok, texts, "feature-extraction", info
    )
    enc = encode(tok, texts, ["input_ids", "attention_mask"])
    split = (enc["input_ids"], enc["attention_mask"], target)
    data = S.TuneData(tuple(a[:200] for a in split), tuple(a[200:] for a in split))
    settings = {"epochs": 5, "batch_size": 32, "lr": 0.01, "seed": 0, "patience": 5}
    settings |= {"weights": {"embedding_cosine": 1.0, "embedding_mse": 1.0}, "temperature": 2.0}
    _, res = S.tune(S.distill_table(encoder, 1e-4), data, settings)
    assert res.best_val > res.curve[0]["val"] + 0.01  # closer to the teacher on held-out texts
    _, res2 = S.tune(S.distill_table(encoder, 1e-4), data, settings)
    assert res2.curve == res.curve  # seeded

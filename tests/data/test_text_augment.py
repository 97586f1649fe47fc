"""data.augment (packager.data.text_augment): seeded WordNet synonym swaps and one deleted
span, appended to the training split only; a missing WordNet is one error line."""

from __future__ import annotations

import json
import random

import pytest

from packager.config import TextAugmentConfig
from packager.data import text_augment as A
from packager.errors import InputFileError

HEADER = "  1 This software and database is being provided to you, the LICENSEE\n"


def _wordnet(folder):
    folder.mkdir()
    lines = {
        "noun": "00001 03 n 02 car 0 automobile 0 000 | a motor vehicle\n",
        "verb": "00002 29 v 02 quick 0 fast 0 000 | move fast\n",
        "adj": "00003 00 a 02 big(a) 0 large 0 000 | above average in size\n",
        "adv": "00004 02 r 01 slowly 0 000 | without speed\n",
    }
    for pos, line in lines.items():
        (folder / f"data.{pos}").write_text(HEADER + line, encoding="latin-1")
    return folder


def test_synonyms_pool_each_synset_and_drop_markers(tmp_path):
    table = A.synonyms(_wordnet(tmp_path / "wn"))
    assert table["car"] == ["automobile"] and table["big"] == ["large"]
    assert "slowly" not in table  # a synset of one word offers no swap


def test_augment_is_seeded_and_keeps_labels_in_the_training_split_only(tmp_path):
    wn = _wordnet(tmp_path / "wn")
    cfg = TextAugmentConfig(copies=2, synonyms=1.0, span_delete=0.2, wordnet=str(wn))
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"text": "the big car was very quick today", "label": 1}]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "val.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert A.augment_train(data, cfg) == 3
    got = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    assert got[0] == rows[0] and all(r["label"] == 1 for r in got)
    variant = got[1]["text"].split(" ")
    assert len(variant) == 6  # one span of round(0.2 * 7) = 1 word deleted
    assert "car" not in variant and ("automobile" in variant or "big" not in got[1]["text"])
    assert (data / "val.jsonl").read_text().count("\n") == 1  # never the held-out splits
    again = A.augment("the big car was very quick today", random.Random(0), A.synonyms(wn), cfg)
    assert again == A.augment(
        "the big car was very quick today", random.Random(0), A.synonyms(wn), cfg
    )


def test_augment_without_wordnet_is_one_error(tmp_path):
    with pytest.raises(InputFileError, match="apt-get install wordnet-base"):
        A.synonyms(tmp_path / "nowhere")

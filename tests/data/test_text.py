"""Text data: every supported source format, label mapping, caps, and one-line errors."""

from __future__ import annotations

import json

import pytest

from packager.artifact import Artifact
from packager.config import DataConfig
from packager.data.text import build_splits, encode, load_tokenizer, read_split
from packager.errors import InputFileError, RecipeError

ROWS = [
    {"sentence": f"text number {i} {'good' if i % 3 else 'bad'}", "y": ["neg", "pos"][i % 3 > 0]}
    for i in range(60)
]


def _write(path, fmt):
    import pandas as pd

    df = pd.DataFrame(ROWS)
    if fmt == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    elif fmt == ".csv":
        df.to_csv(path, index=False)
    elif fmt == ".parquet":
        df.to_parquet(path)
    elif fmt == "folder":
        import datasets

        datasets.Dataset.from_pandas(df).save_to_disk(str(path))
    return path


def _split(tmp_path, **cfg):
    meta = build_splits(DataConfig(**cfg), tmp_path)
    return Artifact(tmp_path, "data", "id", meta)


@pytest.mark.parametrize("fmt", [".csv", ".parquet", "folder"])
def test_every_format_gives_the_same_splits_and_labels(tmp_path, fmt):
    arts = []
    for kind in (".jsonl", fmt):
        src = _write(tmp_path / f"src{kind if kind != 'folder' else ''}", kind)
        out = tmp_path / f"out{kind}"
        out.mkdir()
        arts.append(_split(out, source=str(src), text_column="sentence", label_column="y", seed=3))
    ref, art = arts
    assert art.meta["labels"] == ["neg", "pos"] and art.meta["sizes"] == ref.meta["sizes"]
    assert sum(art.meta["sizes"].values()) == 60
    texts, y = read_split(art.path, "train")
    assert (
        texts == read_split(ref.path, "train")[0]
    )  # the split depends on the seed, not the format
    by_text = {r["sentence"]: r["y"] for r in ROWS}
    assert [art.meta["labels"][i] for i in y] == [by_text[t] for t in texts]


def test_txt_is_one_example_a_line_and_unlabelled(tmp_path):
    src = tmp_path / "c.txt"
    src.write_text("first line\n\n  second line  \nthird\n" * 10)
    art = _split(tmp_path, source=str(src), val_fraction=0.2, test_fraction=0.2)
    texts, y = read_split(art.path, "train")
    assert y is None and art.meta["labels"] == []
    assert set(texts) <= {"first line", "second line", "third"}  # blanks dropped, stripped
    assert sum(art.meta["sizes"].values()) == 30


def test_caps_stop_reading_early(tmp_path):
    src = tmp_path / "c.txt"
    src.write_text("".join(f"line {i}\n" for i in range(5000)))
    art = _split(tmp_path, source=str(src), limit=50, eval_limit=10, stream_batch=100)
    assert art.meta["sizes"] == {"train": 50, "val": 10, "test": 10}


def test_integer_labels_and_label_names(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"text": f"t{i}", "label": i % 3}) + "\n" for i in range(90)))
    assert _split(tmp_path, source=str(src)).meta["labels"] == ["0", "1", "2"]
    art = _split(tmp_path, source=str(src), label_names=("a", "b", "c"))
    assert art.meta["labels"] == ["a", "b", "c"]
    texts, y = read_split(art.path, "test")
    assert all(int(t[1:]) % 3 == label for t, label in zip(texts, y, strict=True))
    with pytest.raises(RecipeError, match=r"not in data\.label_names"):
        _split(tmp_path, source=str(src), label_names=("a", "b"))


@pytest.mark.parametrize(
    ("content", "cfg", "match"),
    [
        ('{"body": "x"}\n', {}, "no text column 'text' \\(columns: body\\); set data.text_column"),
        ("not json\n", {}, "line 1: not JSON"),
        ('{"text": "a", "label": 1}\n{"text": "b"}\n', {}, "some rows have a 'label' label"),
    ],
)
def test_bad_sources_are_one_line_errors(tmp_path, content, cfg, match):
    src = tmp_path / "bad.jsonl"
    src.write_text(content * 20)
    with pytest.raises(InputFileError, match=match):
        _split(tmp_path, source=str(src), **cfg)
    with pytest.raises(InputFileError, match="not found"):
        _split(tmp_path, source=str(tmp_path / "nope.jsonl"))
    (tmp_path / "x.docx").write_text("x")
    with pytest.raises(InputFileError, match=r"unsupported text file '\.docx'"):
        _split(tmp_path, source=str(tmp_path / "x.docx"))


def test_tokenizer_truncates_and_pads_like_the_runtime(tiny_classifier):
    tok = load_tokenizer(tiny_classifier, 6)
    feeds = encode(tok, ["goal match team win score coach league", "rain"])
    assert feeds["input_ids"].shape == (2, 6)  # truncated at 6, the short one padded to 6
    assert feeds["attention_mask"].tolist() == [[1] * 6, [1, 1, 1, 0, 0, 0]]
    assert feeds["input_ids"][1, 3:].tolist() == [0, 0, 0]
    assert set(encode(tok, ["x"], ["input_ids"])) == {"input_ids"}

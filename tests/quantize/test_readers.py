"""Calibration/evaluation data: streamed from .npz/.npy/.jsonl/.txt in batches, capped."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from packager.errors import InputFileError
from packager.quantize.data import CalibrationReader, InputSpec, open_source

ONE = [InputSpec("x", "float32", ("batch", 16))]
IMAGE = [InputSpec("input", "float32", ("batch", 1, 8, 8))]
TOKENS = [
    InputSpec("input_ids", "int64", ("batch", "sequence")),
    InputSpec("attention_mask", "int64", ("batch", "sequence")),
]


def _sizes(source):
    return [len(next(iter(f.values()))) for f, _ in source.batches()]


def test_npy_is_read_in_batches_up_to_the_cap(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(1000 * 16, dtype=np.float64).reshape(1000, 16))
    src = open_source(tmp_path / "x.npy", ONE, batch=32, limit=70)
    assert _sizes(src) == [32, 32, 6]
    feeds, labels = next(src.batches())
    assert feeds["x"].dtype == np.float32 and labels is None
    assert feeds["x"][1, 0] == 16.0


def test_npz_member_is_streamed_not_loaded_whole(tmp_path):
    big = np.ones((20_000, 256), np.float32)  # 20 MB
    np.savez_compressed(tmp_path / "big.npz", x=big, y=np.zeros(20_000, np.int64))
    del big
    tracemalloc.start()
    src = open_source(
        tmp_path / "big.npz", [InputSpec("x", "float32", ("b", 256))], batch=16, limit=64
    )
    batches = list(src.batches())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [len(y) for _, y in batches] == [16, 16, 16, 16]
    assert peak < 2_000_000, f"peak {peak} bytes: the member was read whole"


def test_npz_maps_input_names_labels_and_reshapes_flat_samples(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 64), np.float32), labels=np.arange(10))
    feeds, labels = next(open_source(tmp_path / "d.npz", IMAGE, batch=4, limit=10).batches())
    assert feeds["input"].shape == (4, 1, 8, 8) and labels.tolist() == [0, 1, 2, 3]
    np.savez(tmp_path / "t.npz", input_ids=np.ones((5, 3)), attention_mask=np.ones((5, 3)))
    feeds, _ = next(open_source(tmp_path / "t.npz", TOKENS, batch=8, limit=5).batches())
    assert feeds["input_ids"].dtype == np.int64 and feeds["attention_mask"].shape == (5, 3)


def test_jsonl_objects_lists_and_labels(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"x": [i] * 16, "label": i % 2}) for i in range(5)) + "\n\n")
    batches = list(open_source(p, ONE, batch=2, limit=100).batches())
    assert [len(y) for _, y in batches] == [2, 2, 1]
    assert batches[2][0]["x"][0, 0] == 4.0 and batches[0][1].tolist() == [0, 1]
    q = tmp_path / "l.jsonl"
    q.write_text("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n" * 3)
    assert _sizes(open_source(q, ONE, batch=8, limit=2)) == [2]


def _tokenizer(path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[PAD]": 0, "[UNK]": 1, "the": 2, "cat": 3, "sat": 4}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(path))
    return path


def test_text_and_jsonl_text_are_tokenized_padded_and_truncated(tmp_path):
    tok = _tokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "t.txt").write_text("the cat\nthe cat sat on the mat\n")
    src = open_source(
        tmp_path / "t.txt", TOKENS, batch=8, limit=10, tokenizer=str(tmp_path), max_length=4
    )
    feeds, _ = next(src.batches())
    assert feeds["input_ids"].tolist() == [[2, 3, 0, 0], [2, 3, 4, 1]]
    assert feeds["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    (tmp_path / "t.jsonl").write_text('{"text": "cat", "label": 1}\n')
    feeds, y = next(
        open_source(tmp_path / "t.jsonl", TOKENS, batch=8, limit=10, tokenizer=str(tok)).batches()
    )
    assert feeds["input_ids"].tolist() == [[3]] and y.tolist() == [1]


def test_calibration_reader_counts_and_rewinds(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((50, 16), np.float32))
    reader = CalibrationReader(open_source(tmp_path / "x.npy", ONE, batch=20, limit=45))
    while reader.get_next() is not None:
        pass
    assert reader.count == 45
    reader.rewind()
    assert reader.get_next()["x"].shape == (20, 16)


@pytest.mark.parametrize(
    ("name", "content", "inputs", "match"),
    [
        ("missing.npy", None, ONE, "file not found"),
        ("d.h5", "1,2", ONE, "unsupported data file '.h5'"),
        ("d.csv", "text\nhello\n", TOKENS, "needs a tokenizer"),
        ("d.npy", "npy", TOKENS, "holds one input but the model has 2"),
        ("d.npz", "npz", TOKENS, r"needs one array per model input \(input_ids, attention_mask\)"),
        ("d.jsonl", '{"x": [1]}\nnot json\n', ONE, "line 2: not JSON"),
        ("d.txt", "hello\n", TOKENS, "needs a tokenizer"),
        ("w.npy", "wrong", ONE, r"samples of shape \[3\], the model expects \[16\]"),
    ],
)
def test_bad_data_is_a_one_line_error(tmp_path, name, content, inputs, match):
    p = tmp_path / name
    if content == "npy":
        np.save(p, np.zeros((2, 16)))
    elif content == "npz":
        np.savez(p, a=np.zeros(2))
    elif content == "wrong":
        np.save(p, np.zeros((2, 3)))
    elif content is not None:
        p.write_text(content)
    with pytest.raises(InputFileError, match=match) as err:
        list(open_source(p, inputs, batch=4, limit=10).batches())
    assert "\n" not in str(err.value)

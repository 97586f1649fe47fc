"""Language-model data: text or prompt/completion rows from .txt, .jsonl, parquet and
save_to_disk folders, streamed into splits; packed into full-length token rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from packager.config import DataConfig
from packager.data.lm import build_lm_splits, pack, rows
from packager.errors import InputFileError
from packager.recipe import build_recipe


def _cfg(source, **kw) -> DataConfig:
    return DataConfig(source=str(source), val_fraction=0.1, test_fraction=0.1, **kw)


def test_plain_text_becomes_text_rows(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("\n".join(f"line number {i} of text" for i in range(200)) + "\n\n")
    meta = build_lm_splits(_cfg(src), tmp_path)
    assert meta["modality"] == "lm" and meta["kind"] == "text"
    assert sum(meta["sizes"].values()) == 200  # the blank line is skipped
    assert next(rows(tmp_path, "train"))["text"].startswith("line number")


def test_prompt_and_completion_columns_with_their_producer(tmp_path):
    from tiny_models import write_tiny_lm_texts

    src = write_tiny_lm_texts(tmp_path / "p.jsonl", 100, prompts=True)
    out = tmp_path / "out"
    out.mkdir()
    cfg = _cfg(src, prompt_column="prompt", completion_column="completion", completions_by="people")
    meta = build_lm_splits(cfg, out)
    row = next(rows(out, "train"))
    assert set(row) == {"prompt", "completion"} and meta["generated_by"] == "people"


def test_completions_without_a_named_producer_are_refused():
    with pytest.raises(ValueError, match="completions_by"):
        DataConfig(source="x.jsonl", prompt_column="p", completion_column="c")


@pytest.mark.parametrize("kind", ["parquet", "save_to_disk"])
def test_parquet_and_datasets_folders(tmp_path, kind):
    import datasets

    ds = datasets.Dataset.from_dict({"text": [f"a sentence {i}" for i in range(100)]})
    if kind == "parquet":
        src = tmp_path / "d.parquet"
        ds.to_parquet(str(src))
    else:
        src = tmp_path / "saved"
        ds.save_to_disk(str(src))
    out = tmp_path / "out"
    out.mkdir()
    assert sum(build_lm_splits(_cfg(src, stream_batch=16), out)["sizes"].values()) == 100


def test_packing_fills_every_row_with_real_tokens():
    encode = lambda t: [ord(c) for c in t]  # noqa: E731
    got = list(pack(iter(["abc", "defgh", "ij"]), encode, 0, 4))
    assert [list(r) for r in got] == [[97, 98, 99, 0], [100, 101, 102, 103], [104, 0, 105, 106]]
    assert all(r.dtype == np.int64 for r in got)


def test_a_missing_prompt_column_is_one_line(tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text("\n".join(json.dumps({"q": "hi"}) for _ in range(30)))
    with pytest.raises(InputFileError, match="no 'prompt' column"):
        build_lm_splits(_cfg(src, prompt_column="prompt"), tmp_path)


def test_a_text_generation_recipe_needs_a_causal_student():
    with pytest.raises(Exception, match="causal-lm"):
        build_recipe(
            {"task": "text-generation", "teacher": {"source": "hf:x"}, "data": {"source": "a.txt"}}
        )

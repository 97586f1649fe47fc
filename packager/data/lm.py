"""Language-model data: plain text or prompts (.txt, .jsonl with a text column or
prompt/completion columns, .csv, parquet, save_to_disk folders), streamed into train/val/test
.jsonl splits; then token streams packed into fixed-length training sequences.

A row is {"text": ...} for plain text, or {"prompt": ..., "completion": ...} (completion only
when the data brings one). Reading stops once every split is full (`limit`, `eval_limit`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from packager.config import DataConfig
from packager.data.text import SPLITS, read_rows, split_of
from packager.errors import InputFileError


def _row(cfg: DataConfig, raw: dict[str, Any], where: str) -> dict[str, str] | None:
    column = cfg.prompt_column or cfg.text_column
    if column not in raw:
        raise InputFileError(f"{where}: no {column!r} column (data.prompt_column/text_column)")
    text = raw[column]
    if not isinstance(text, str) or not text.strip():
        return None
    if not cfg.prompt_column:
        return {"text": text}
    row = {"prompt": text}
    if cfg.completion_column:
        done = raw.get(cfg.completion_column)
        if not isinstance(done, str) or not done.strip():
            return None
        row["completion"] = done
    return row


def build_lm_splits(cfg: DataConfig, folder: Path) -> dict[str, Any]:
    """Stream the source into train/val/test .jsonl files in `folder`; return the data meta."""
    rng = np.random.default_rng(cfg.seed)
    caps = {"train": cfg.limit, "val": cfg.eval_limit, "test": cfg.eval_limit}
    sizes = dict.fromkeys(SPLITS, 0)
    where = f"data.source {cfg.source}"
    files = {s: (folder / f"{s}.jsonl").open("w", encoding="utf-8") for s in SPLITS}
    try:
        for batch in read_rows(Path(cfg.source), cfg.stream_batch, cfg.text_column, where):
            draws = rng.random(len(batch))
            for raw, r in zip(batch, draws, strict=True):
                row = _row(cfg, raw, where)
                if row is None:
                    continue
                split = split_of(r, cfg)
                if caps[split] is not None and sizes[split] >= caps[split]:
                    continue
                files[split].write(json.dumps(row, ensure_ascii=False) + "\n")
                sizes[split] += 1
            if all(caps[s] is not None and sizes[s] >= caps[s] for s in SPLITS):
                break
    finally:
        for f in files.values():
            f.close()
    if min(sizes.values()) == 0:
        raise InputFileError(f"{where}: too few non-empty rows for train/val/test ({sizes})")
    kind = "prompts" if cfg.prompt_column else "text"
    return {
        "file": "train.jsonl",
        "modality": "lm",
        "source": cfg.source,
        "kind": kind,
        "completions": bool(cfg.completion_column),
        "generated_by": cfg.completions_by if cfg.completion_column else None,
        "sizes": sizes,
        "labels": [],
        "max_length": cfg.max_length,
        "stream_batch": cfg.stream_batch,
    }


def rows(folder: Path, split: str, limit: int | None = None) -> Iterator[dict[str, str]]:
    """The rows of one split, in file order."""
    with (Path(folder) / f"{split}.jsonl").open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                return
            yield json.loads(line)


def row_text(row: dict[str, str]) -> str:
    """What a row teaches: its text, or its prompt followed by its completion."""
    if "text" in row:
        return row["text"]
    return row["prompt"] + row.get("completion", "")


def pack(texts: Iterator[str], encode, eos: int | None, length: int) -> Iterator[np.ndarray]:
    """Token ids of `texts` (each followed by EOS), concatenated and cut into rows of `length`
    tokens: no padding, every position a real next-token target."""
    buf: list[int] = []
    for text in texts:
        buf.extend(encode(text))
        if eos is not None:
            buf.append(eos)
        while len(buf) >= length:
            yield np.asarray(buf[:length], np.int64)
            buf = buf[length:]


def sequences(
    folder: Path, split: str, encode, eos: int | None, length: int, limit: int | None = None
) -> np.ndarray:
    """Up to `limit` packed rows (n, length) of one split (the held-out ones for evaluation)."""
    out = []
    for seq in pack((row_text(r) for r in rows(folder, split)), encode, eos, length):
        out.append(seq)
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise InputFileError(f"{folder}: the {split} split has fewer than {length} tokens")
    return np.stack(out)

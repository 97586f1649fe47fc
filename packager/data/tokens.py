"""Pre-tokenized training text: the training split's token ids, once per tokenizer and corpus
(the tokenize step), so neither the teacher pass nor any epoch on any rank tokenizes again.

A language model's training text is stored packed instead (`sequences.npy`, int32 (n, length):
the texts with EOS between them, cut into rows of `length`), in the order its trainer reads.

A split is stored ragged: `ids.npy` (int32, every text's ids end to end), `types.npy` (uint8
token type ids), `offsets.npy` (int64, n + 1: text i is ids[offsets[i]:offsets[i + 1]]) and
`labels.npy` (int64, -1 where there is none), all memory-mapped when read. `collate` pads a
batch exactly as the tokenizer pads (to the longest text, with its pad id, mask 0, type 0), so
the model sees the ids `packager.data.text.encode` would give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FILES = ("ids.npy", "types.npy", "offsets.npy", "labels.npy")


def write_tokens(data: Path, split: str, tok, chunk: int, out: Path, advance=lambda n: None):
    """Tokenize `split` of the text data folder `data` (with `tok`, truncating as it is
    configured) into `out`; returns (texts, tokens)."""
    from packager.data.text import stream_split

    ids, types, lengths, labels = [], [], [0], []
    for texts, ys in stream_split(data, split, chunk):
        for e in tok.encode_batch(texts):
            n = sum(e.attention_mask)  # without the batch's padding
            ids.append(np.asarray(e.ids[:n], np.int32))
            types.append(np.asarray(e.type_ids[:n], np.uint8))
            lengths.append(n)
        labels += ys
        advance(len(texts))
    out.mkdir(parents=True, exist_ok=True)
    flat = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    np.save(out / "ids.npy", flat)
    np.save(out / "types.npy", np.concatenate(types) if types else np.zeros(0, np.uint8))
    np.save(out / "offsets.npy", np.cumsum(np.asarray(lengths, np.int64)))
    np.save(out / "labels.npy", np.asarray(labels, np.int64))
    return len(lengths) - 1, int(flat.size)


class Tokens:
    """A tokenized split, memory-mapped: text i's ids and type ids, lengths, labels."""

    def __init__(self, folder: Path, pad_id: int):
        self.folder, self.pad_id = Path(folder), int(pad_id)
        self.ids = np.load(self.folder / "ids.npy", mmap_mode="r")
        self.types = np.load(self.folder / "types.npy", mmap_mode="r")
        self.offsets = np.load(self.folder / "offsets.npy")
        self.labels = np.load(self.folder / "labels.npy")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return np.asarray(self.ids[a:b]), np.asarray(self.types[a:b])


def collate(rows: list[tuple[np.ndarray, np.ndarray]], pad_id: int, names: list[str]):
    """Model feeds (int64 torch tensors) for a batch of (ids, type ids), right-padded to its
    longest text as the tokenizer pads."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    out: dict[str, Any] = {
        "input_ids": np.full((len(rows), width), pad_id, np.int64),
        "attention_mask": np.zeros((len(rows), width), np.int64),
        "token_type_ids": np.zeros((len(rows), width), np.int64),
    }
    for i, (ids, types) in enumerate(rows):
        out["input_ids"][i, : len(ids)] = ids
        out["attention_mask"][i, : len(ids)] = 1
        out["token_type_ids"][i, : len(ids)] = types
    return {k: torch.from_numpy(out[k]) for k in names}


def length_batches(lengths: np.ndarray, batch: int) -> list[list[int]]:
    """Rows in batches of similar length (little padding), in input order of their lengths:
    for a teacher pass whose outputs are written back by row."""
    order = np.argsort(lengths, kind="stable").tolist()
    return [order[i : i + batch] for i in range(0, len(order), batch)]


SEQUENCES = "sequences.npy"


def write_sequences(texts, encode, eos: int | None, length: int, out: Path, advance=lambda n: 1):
    """Pack `texts` (packager.data.lm.pack) into `out`/sequences.npy; returns its row count."""
    from packager.data.lm import pack

    rows = []
    for seq in pack(texts, encode, eos, length):
        rows.append(seq.astype(np.int32))
        advance(1)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / SEQUENCES, np.stack(rows) if rows else np.zeros((0, length), np.int32))
    return len(rows)


def sequences(folder: Path) -> np.ndarray:
    """The packed training sequences of a tokenize step, memory-mapped."""
    return np.load(Path(folder) / SEQUENCES, mmap_mode="r")

"""Token-level KD from an API teacher's top-k log-probabilities, where its tokens are the
student's: a completion whose every token string is one of the student's tokens (the
vocabulary's own string, its decoded text where that is one token's only, or vLLM's
`token_id:N`) is the student's ids exactly as the endpoint generated them, and each position's
top-k alternatives map to the student's ids the same way. Completions with a token the student
does not have are re-tokenised by the student and teach at sequence level only (counted).

The result, in `out`: sequences.npy (the packed training sequences, what the trainer reads),
values.npy and indices.npy (the teacher_logits format: (sequences, length, k)) and present.npy
(the positions the teacher scored). Packing follows packager.data.lm.pack: the completions
first, then the data's own training text, each followed by EOS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from packager.data.lm import row_text, rows

NO_SCORE = -1e4  # float16-safe log-probability of a padded alternative: ~0 after the softmax


class Pieces:
    """Token string -> the student's id."""

    def __init__(self, tok):
        self.raw = dict(tok.get_vocab())
        decoded: dict[str, int | None] = {}
        for token_id in self.raw.values():
            text = tok.decode([token_id], skip_special_tokens=False)
            decoded[text] = None if text in decoded else token_id
        self.decoded = {k: v for k, v in decoded.items() if v is not None}
        self.size = len(self.raw)

    def id(self, piece: str) -> int | None:
        if piece.startswith("token_id:") and piece[9:].isdigit():
            n = int(piece[9:])
            return n if n < self.size else None
        found = self.raw.get(piece)
        return found if found is not None else self.decoded.get(piece)


def aligned(tok, row: dict[str, Any], pieces: Pieces) -> tuple[list[int], list[dict | None]]:
    """(the student's ids of prompt + completion, per id the teacher's top-k for predicting it,
    or None): the endpoint's own tokens when every one is the student's, else the student's
    tokenisation of the text and no distributions."""
    prompt = tok.encode(row["prompt"]).ids
    tokens, tops = row.get("tokens"), row.get("top_logprobs")
    ids = [pieces.id(t) for t in tokens or []]
    if tokens and tops and len(tops) == len(tokens) and None not in ids:
        return prompt + ids, [None] * len(prompt) + list(tops)
    full = tok.encode(row["prompt"] + row["completion"]).ids
    return full, [None] * len(full)


def _texts(data: Path, generated: Path, tok, pieces: Pieces, stats) -> Iterator[tuple]:
    with generated.open(encoding="utf-8") as f:
        for line in f:
            ids, tops = aligned(tok, json.loads(line), pieces)
            stats["completions"] += 1
            stats["aligned"] += any(t is not None for t in tops)
            yield ids, tops
    for r in rows(data, "train"):
        ids = tok.encode(row_text(r)).ids
        yield ids, [None] * len(ids)


def cache_api_sequences(
    data: Path, generated: Path, tok, eos: int | None, length: int, k: int, out: Path
) -> dict[str, Any]:
    """Write the packed sequences and, when k > 0, the teacher's top-k over them; returns the
    counts (completions, aligned ones, scored positions, sequences)."""
    pieces = Pieces(tok)
    stats = {"completions": 0, "aligned": 0, "positions": 0, "alternatives_unmapped": 0}
    seqs, vals, idxs, present = [], [], [], []
    buf: list[tuple[int, dict | None]] = []
    for ids, tops in _texts(data, generated, tok, pieces, stats):
        buf.extend(zip(ids, tops, strict=True))
        if eos is not None:
            buf.append((eos, None))
        while len(buf) >= length:
            seq, buf = buf[:length], buf[length:]
            seqs.append([i for i, _ in seq])
            if k:
                v, i, p = _row(seq, k, pieces, stats)
                vals.append(v)
                idxs.append(i)
                present.append(p)
    stats["sequences"] = len(seqs)
    if not seqs:
        return stats
    np.save(out / "sequences.npy", np.asarray(seqs, np.int64))
    if k and stats["positions"]:
        index_type = np.uint16 if pieces.size <= 65535 else np.int32
        np.save(out / "values.npy", np.stack(vals).astype(np.float16))
        np.save(out / "indices.npy", np.stack(idxs).astype(index_type))
        np.save(out / "present.npy", np.stack(present))
    return stats


def _row(seq: list[tuple[int, dict | None]], k: int, pieces: Pieces, stats) -> tuple:
    """One packed sequence: position p holds the distribution of the token at p + 1."""
    n = len(seq)
    values = np.full((n, k), NO_SCORE, np.float32)
    indices = np.zeros((n, k), np.int64)
    present = np.zeros(n, bool)
    for p in range(n - 1):
        nxt_id, top = seq[p + 1]
        indices[p, :] = nxt_id  # padded alternatives point at the real next token
        if top is None:
            continue
        j = 0
        for piece, logprob in sorted(top.items(), key=lambda kv: -kv[1])[:k]:
            sid = pieces.id(piece)
            if sid is None:
                stats["alternatives_unmapped"] += 1
                continue
            values[p, j], indices[p, j] = logprob, sid
            j += 1
        present[p] = j > 0
        stats["positions"] += j > 0
    return values, indices, present

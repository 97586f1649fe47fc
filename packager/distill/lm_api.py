"""Token-level KD from an API teacher's top-k log-probabilities, where its tokens are the
student's: each completion the endpoint wrote is tokenised by the student's tokenizer, and when
the student's tokens of the completion are the endpoint's tokens one for one (a server of the
student's family), each position's top-k alternatives are mapped to the student's ids. The
result is the teacher_logits format (values, indices: (sequences, length, k)) plus `present`,
the positions the teacher scored, in the order the trainer packs its sequences
(packager.distill.lm_distill.training_texts, packager.data.lm.pack). Completions whose tokens
are not the student's teach at sequence level only, and are counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from packager.data.lm import row_text, rows

NO_SCORE = -1e4  # float16-safe log-probability of a padded alternative: ~0 after the softmax


def _piece_maps(tok) -> tuple[dict[str, int], dict[str, int]]:
    """token string -> id: the vocabulary's own strings, and each id's decoded text where that
    text is one id's only (a byte fragment many ids decode alike maps to none)."""
    raw = dict(tok.get_vocab())
    decoded: dict[str, int | None] = {}
    for token_id in raw.values():
        text = tok.decode([token_id], skip_special_tokens=False)
        decoded[text] = None if text in decoded else token_id
    return raw, {k: v for k, v in decoded.items() if v is not None}


def _student_ids(piece: str, maps) -> int | None:
    raw, decoded = maps
    return raw.get(piece, decoded.get(piece))


def aligned(tok, row: dict[str, Any], maps) -> tuple[list[int], list[dict] | None]:
    """(the student's ids of prompt + completion, per id the teacher's top-k for predicting it
    or None): the completion's distributions when its tokens are the endpoint's, else None."""
    prompt_ids = tok.encode(row["prompt"]).ids
    full = tok.encode(row["prompt"] + row["completion"]).ids
    tokens, tops = row.get("tokens"), row.get("top_logprobs")
    if not tokens or not tops or full[: len(prompt_ids)] != prompt_ids:
        return full, None
    completion = full[len(prompt_ids) :]
    said = [tok.decode([i], skip_special_tokens=False) for i in completion]
    raw = [tok.id_to_token(i) for i in completion]
    if len(completion) != len(tokens) or not all(
        t in (a, b) for t, a, b in zip(tokens, said, raw, strict=True)
    ):
        return full, None
    return full, [None] * len(prompt_ids) + list(tops)


def _texts(data: Path, generated: Path, tok, maps, stats) -> Iterator[tuple[list[int], list]]:
    """Ids and per-id distributions of every training text, in training_texts' order: the
    teacher's completions first, then the data's own text (no distributions)."""
    with generated.open(encoding="utf-8") as f:
        for line in f:
            ids, tops = aligned(tok, json.loads(line), maps)
            stats["completions"] += 1
            stats["aligned"] += tops is not None
            yield ids, tops or [None] * len(ids)
    for r in rows(data, "train"):
        ids = tok.encode(row_text(r)).ids
        yield ids, [None] * len(ids)


def cache_api_topk(
    data: Path, generated: Path, tok, eos: int | None, length: int, k: int, out: Path
) -> dict[str, Any]:
    """Write values.npy, indices.npy, present.npy in `out`, packed like the trainer's
    sequences; returns the counts (completions, aligned, scored positions)."""
    maps = _piece_maps(tok)
    stats = {"completions": 0, "aligned": 0, "positions": 0, "alternatives_unmapped": 0}
    vals, idxs, present = [], [], []
    buf: list[tuple[int, dict | None]] = []
    for ids, tops in _texts(data, generated, tok, maps, stats):
        buf.extend(zip(ids, tops, strict=True))
        if eos is not None:
            buf.append((eos, None))
        while len(buf) >= length:
            seq, buf = buf[:length], buf[length:]
            v, i, p = _row(seq, k, maps, stats)
            vals.append(v)
            idxs.append(i)
            present.append(p)
    index_type = np.uint16 if len(maps[0]) <= 65535 else np.int32
    if not vals:
        return stats | {"sequences": 0}
    np.save(out / "values.npy", np.stack(vals).astype(np.float16))
    np.save(out / "indices.npy", np.stack(idxs).astype(index_type))
    np.save(out / "present.npy", np.stack(present))
    return stats | {"sequences": len(vals)}


def _row(seq: list[tuple[int, dict | None]], k: int, maps, stats) -> tuple:
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
            sid = _student_ids(piece, maps)
            if sid is None:
                stats["alternatives_unmapped"] += 1
                continue
            values[p, j], indices[p, j] = logprob, sid
            j += 1
        present[p] = j > 0
        stats["positions"] += j > 0
    return values, indices, present

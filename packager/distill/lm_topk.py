"""The teacher's top-k logits at every position of the training sequences, computed once per
teacher and corpus (DistillKit's offline distillation): values float16, ids uint16 (int32 for
vocabularies past 65,535), memory-mapped, in the order the trainer packs the sequences."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.data.lm import pack
from packager.distill.lm_distill import training_texts
from packager.sources.lm import describe_lm, encoder, lm_tokenizer, load_causal_lm


def bytes_per_token(k: int, vocab: int) -> int:
    return k * (2 + (2 if vocab <= 65535 else 4))


def cache_topk(
    teacher_dir: Path,
    data: Path,
    generated: Path | None,
    k: int,
    length: int,
    limit: int | None,
    batch: int,
    out: Path,
    advance=lambda *a, **kw: None,
) -> dict[str, Any]:
    model = load_causal_lm(teacher_dir)
    tok = lm_tokenizer(teacher_dir)
    info = describe_lm(model)
    eos = (info["eos_token_ids"] or [None])[0]

    def seqs():
        for i, s in enumerate(pack(training_texts(data, generated), encoder(tok), eos, length)):
            if limit is not None and i >= limit:
                return
            yield s

    n = sum(1 for _ in seqs())
    index_type = np.uint16 if info["vocab_size"] <= 65535 else np.int32
    values = np.lib.format.open_memmap(out / "values.npy", "w+", np.float16, (n, length, k))
    ids = np.lib.format.open_memmap(out / "indices.npy", "w+", index_type, (n, length, k))
    t0, buf, row = time.perf_counter(), [], 0

    def flush():
        nonlocal row, buf
        with torch.no_grad():
            logits = model(input_ids=torch.from_numpy(np.stack(buf))).logits.float()
        top = logits.topk(k, dim=-1)
        values[row : row + len(buf)] = top.values.numpy().astype(np.float16)
        ids[row : row + len(buf)] = top.indices.numpy().astype(index_type)
        row += len(buf)
        advance(len(buf))
        buf = []

    for s in seqs():
        buf.append(s)
        if len(buf) == batch:
            flush()
    if buf:
        flush()
    values.flush()
    ids.flush()
    per = bytes_per_token(k, info["vocab_size"])
    return {
        "sequences": n,
        "tokens": n * length,
        "k": k,
        "bytes_per_token": per,
        "full_bytes_per_token": info["vocab_size"] * 4,
        "bytes": n * length * per,
        "teacher_seconds": time.perf_counter() - t0,
    }

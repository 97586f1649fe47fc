"""The teacher's top-k logits at every position of the training sequences, computed once per
teacher and corpus (DistillKit's offline distillation): values float16, ids uint16 (int32 for
vocabularies past 65,535), memory-mapped, in the order the trainer packs the sequences."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.data.tokens import sequences
from packager.nets.loop import LOCAL, Run, sharded_map
from packager.sources.lm import describe_lm, load_causal_lm


def bytes_per_token(k: int, vocab: int) -> int:
    return k * (2 + (2 if vocab <= 65535 else 4))


def cache_topk(
    teacher_dir: Path,
    tokens: Path,
    k: int,
    limit: int | None,
    batch: int,
    out: Path,
    advance=lambda *a, **kw: None,
    run: Run = LOCAL,
) -> dict[str, Any]:
    """Write values.npy and indices.npy in `out` (the writer does) for the first `limit` packed
    training sequences of the tokenize step's folder `tokens`: batch i on rank i % world, on
    the run's device and precision."""
    model = load_causal_lm(teacher_dir).to(run.compute.device).eval()
    info = describe_lm(model)
    seqs = sequences(tokens)
    n, length = (len(seqs) if limit is None else min(limit, len(seqs))), seqs.shape[1]
    index_type = np.uint16 if info["vocab_size"] <= 65535 else np.int32
    if run.writer:
        values = np.lib.format.open_memmap(out / "values.npy", "w+", np.float16, (n, length, k))
        ids = np.lib.format.open_memmap(out / "indices.npy", "w+", index_type, (n, length, k))
    t0 = time.perf_counter()

    def top(start: int):
        rows = np.asarray(seqs[start : min(start + batch, n)], np.int64)
        x = torch.from_numpy(rows).to(run.compute.device)
        with torch.no_grad(), run.compute.autocast():
            got = model(input_ids=x).logits.float().topk(k, dim=-1)
        return got.values.cpu().numpy().astype(np.float16), got.indices.cpu().numpy()

    for start, (v, i) in sharded_map(list(range(0, n, batch)), top, run):
        if run.writer:
            values[start : start + len(v)] = v
            ids[start : start + len(v)] = i.astype(index_type)
        advance(len(v))
    if run.writer:
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
        "processes": run.world,
        **run.compute.describe(),
    }


def run(job: dict[str, Any], run: Run, reporter) -> dict[str, Any]:
    """The teacher_logits pass from plain arguments (packager.distill.ddp): `job` holds
    teacher, tokens, k, limit, batch and out (folders)."""
    with reporter.track("teacher top-k", job["limit"] or 1) as advance:
        return cache_topk(
            Path(job["teacher"]),
            Path(job["tokens"]),
            job["k"],
            job["limit"],
            job["batch"],
            Path(job["out"]),
            advance,
            run,
        )

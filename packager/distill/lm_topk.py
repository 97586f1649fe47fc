"""The teacher's top-k logits at every position of the training sequences, computed once per
teacher and corpus (DistillKit's offline distillation): values float16, ids uint16 (int32 for
vocabularies past 65,535), memory-mapped, in the order the trainer packs the sequences."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.data.lm import pack
from packager.distill.lm_distill import training_texts
from packager.nets.loop import LOCAL, Run, sharded_map
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
    run: Run = LOCAL,
) -> dict[str, Any]:
    """Write values.npy and indices.npy in `out` (the writer does): batch i of the packed
    sequences on rank i % world, on the run's device and precision."""
    model = load_causal_lm(teacher_dir).to(run.compute.device).eval()
    tok = lm_tokenizer(teacher_dir)
    info = describe_lm(model)
    eos = (info["eos_token_ids"] or [None])[0]
    packed = pack(training_texts(data, generated), encoder(tok), eos, length)
    seqs = [s.astype(np.int64) for s in itertools.islice(packed, limit)]
    n = len(seqs)
    index_type = np.uint16 if info["vocab_size"] <= 65535 else np.int32
    if run.writer:
        values = np.lib.format.open_memmap(out / "values.npy", "w+", np.float16, (n, length, k))
        ids = np.lib.format.open_memmap(out / "indices.npy", "w+", index_type, (n, length, k))
    t0 = time.perf_counter()

    def top(start: int):
        x = torch.from_numpy(np.stack(seqs[start : start + batch])).to(run.compute.device)
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
    teacher, data, generated, k, length, limit, batch and out (folders/files)."""
    opt = Path(job["generated"]) if job.get("generated") else None
    with reporter.track("teacher top-k", job["limit"] or 1) as advance:
        return cache_topk(
            Path(job["teacher"]),
            Path(job["data"]),
            opt,
            job["k"],
            job["length"],
            job["limit"],
            job["batch"],
            Path(job["out"]),
            advance,
            run,
        )

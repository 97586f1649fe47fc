"""The teacher's head output (pooled embedding, or logits) on every training text, from plain
arguments: batches of similar length from the pre-tokenized split, batch i on rank i % world
(one process, or the ranks of a torchrun job: packager.distill.ddp), gathered in row order,
written once as float16 by the writer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from packager.nets.loop import Run, gathered, sharded_map, to_device


def run(job: dict[str, Any], run: Run, reporter) -> dict[str, Any]:
    """`job`: teacher (folder), task, info (pooling), tokens (folder) and pad_id, batch, out
    (the .npy to write)."""
    from packager.data.tokens import Tokens, collate, length_batches
    from packager.nets.text import forward, input_names
    from packager.sources.hf import load_model

    dev = run.compute.device
    model = load_model(Path(job["teacher"]), job["task"]).to(dev).eval()
    tokens = Tokens(Path(job["tokens"]), job["pad_id"])
    names, info = input_names(model), {**job["info"], "normalize": False}

    computed = [0]  # rows this rank ran the teacher on

    def head(rows: list[int]) -> np.ndarray:
        computed[0] += len(rows)
        feeds = to_device(collate([tokens.row(i) for i in rows], tokens.pad_id, names), dev)
        with torch.no_grad(), run.compute.autocast():
            return forward(model, feeds, job["task"], info)[0].float().cpu().numpy()

    t0, out, done = time.perf_counter(), None, 0
    with reporter.track("teacher outputs", len(tokens)) as advance:
        for rows, got in sharded_map(length_batches(tokens.lengths, job["batch"]), head, run):
            if out is None and run.writer:
                out = np.lib.format.open_memmap(
                    job["out"], mode="w+", dtype=np.float16, shape=(len(tokens), got.shape[1])
                )
            if out is not None:
                out[rows] = got.astype(np.float16)
            done += len(rows)
            advance(len(rows))
    width = 0 if out is None else out.shape[1]
    if out is not None:
        out.flush()
    seconds = time.perf_counter() - t0
    return {
        "texts": done,
        "width": width,
        "seconds": seconds,
        "processes": run.world,
        "rows_by_rank": gathered(computed[0], run),
        "throughput": done / max(seconds, 1e-9),
        "unit": "texts/s",
        **run.compute.describe(),
    }

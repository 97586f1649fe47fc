"""Running causal LMs in torch: perplexity over packed held-out sequences, logits in batches,
and hidden states for block importance (how little each decoder layer changes its input)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch


def torch_perplexity(
    model, encode, eos: int | None, data: Path, split: str, length: int, limit: int
) -> float:
    """exp(mean next-token CE) over up to `limit` packed sequences of `length` tokens (texts
    of the LM data folder `data` through `encode`, each followed by `eos`)."""
    from packager.data.lm import sequences

    seqs = torch.from_numpy(sequences(data, split, encode, eos, length, limit))
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(seqs), 8):
            ids = seqs[i : i + 8]
            logits = model(input_ids=ids).logits[:, :-1].float()
            ce = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum"
            )
            total += float(ce)
            n += ids[:, 1:].numel()
    return math.exp(total / n)


def block_importance(model, ids: torch.Tensor) -> list[float]:
    """ShortGPT's block influence per decoder layer: 1 - mean cosine(input, output) of its
    hidden states over the tokens of `ids`; a layer that barely changes its input scores ~0."""
    with torch.no_grad():
        states = model(input_ids=ids, output_hidden_states=True).hidden_states
    scores = []
    for a, b in itertools.pairwise(states):
        cos = torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)
        scores.append(float(1 - cos.mean()))
    return scores

"""Running causal LMs in torch: perplexity over packed held-out sequences, logits in batches,
and hidden states for block importance (how little each decoder layer changes its input)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch


def torch_perplexity(model, tok, data: Path, split: str, length: int, limit: int) -> float:
    """exp(mean next-token CE) over up to `limit` packed sequences of `length` tokens."""
    from packager.data.lm import sequences
    from packager.sources.lm import encoder, special_ids

    eos = (special_ids(model)["eos_token_ids"] or [None])[0]
    seqs = torch.from_numpy(sequences(data, split, encoder(tok), eos, length, limit))
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


def logits_of(model, ids: np.ndarray, batch: int = 8) -> np.ndarray:
    """float32 logits (n, length, vocab) of packed sequences."""
    out = []
    with torch.no_grad():
        for i in range(0, len(ids), batch):
            out.append(model(input_ids=torch.from_numpy(ids[i : i + batch])).logits.float().numpy())
    return np.concatenate(out)


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

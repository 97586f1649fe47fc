"""Running a transformers model on tokenised text: its inputs, its task head, batched predictions.

Shared by the teacher and distill stages, distillation itself and the export parity check, so
"the teacher's output on these texts" means one thing everywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from packager.data.text import encode


def input_names(model) -> list[str]:
    """The tokenizer fields the model's forward takes (DistilBERT has no token_type_ids)."""
    params = inspect.signature(model.forward).parameters
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in params]


def feeds(tok, texts: list[str], names: list[str]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in encode(tok, texts, names).items()}


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str, normalize: bool) -> torch.Tensor:
    """Sentence embedding from token states: mean over real tokens, or the first ([CLS]) token."""
    if mode == "cls":
        out = hidden[:, 0]
    else:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        out = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(out, dim=-1) if normalize else out


def forward(model, batch, task: str, info: dict[str, Any], states=False, attentions=False):
    """(head output, hidden states, attentions): logits for classifiers, the pooled (not yet
    normalised) sentence embedding for feature extraction."""
    out = model(**batch, output_hidden_states=states, output_attentions=attentions)
    if task == "text-classification":
        head = out.logits
    else:
        head = project(
            model, pool(out.last_hidden_state, batch["attention_mask"], info["pooling"], False)
        )
    return head, out.hidden_states, out.attentions


DENSE = "st_dense"  # the attribute a model carries its sentence-transformers Dense projection in


def project(model, pooled: torch.Tensor) -> torch.Tensor:
    """The pooled embedding through the model's Dense projection, when it has one (a student
    taught by vectors of another width: packager.sources.hf.load_model attaches it)."""
    dense = getattr(model, DENSE, None)
    return dense(pooled) if dense is not None else pooled


@torch.no_grad()
def predict(
    model, tok, texts: list[str], task: str, info: dict, batch: int = 64, device: str = "cpu"
) -> np.ndarray:
    """Logits or final embeddings (normalised when the model normalises) for `texts`, batched
    by length, returned in input order; the model runs on `device` (where it is)."""
    model.eval()
    names = input_names(model)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        batch_feeds = {
            k: v.to(device) for k, v in feeds(tok, [texts[j] for j in idx], names).items()
        }
        head, _, _ = forward(model, batch_feeds, task, info)
        if task != "text-classification" and info.get("normalize"):
            head = F.normalize(head, dim=-1)
        parts.append(head.float().cpu().numpy())
    out = np.concatenate(parts)
    result = np.empty_like(out)
    result[order] = out
    return result


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(state-dict prefix, module list) of the transformer layers: the ModuleList whose length is
    the config's layer count (encoder.layer in BERT/RoBERTa, transformer.layer in DistilBERT)."""
    n = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n and name:
            return name, module
    raise ValueError(f"{type(model).__name__}: cannot find its list of {n} transformer layers")


_QKV = {
    "query": ("query", "q_lin", "q_proj"),
    "key": ("key", "k_lin", "k_proj"),
    "value": ("value", "v_lin", "v_proj"),
}


@contextmanager
def attention_projections(model: nn.Module, layer: int = -1) -> Iterator[dict[str, torch.Tensor]]:
    """While active, the dict holds the query, key and value projections (batch, sequence,
    hidden) of one self-attention layer from the model's latest forward (MiniLMv2 relations)."""
    _, layers = layer_list(model)
    block = layers[layer]
    found: dict[str, nn.Module] = {}
    for name, module in block.named_modules():
        for role, suffixes in _QKV.items():
            if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in suffixes:
                found[role] = module
    if set(found) != set(_QKV):
        raise ValueError(f"{type(model).__name__}: cannot find the q/k/v projections of a layer")
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, role=role: captured.__setitem__(role, out))
        for role, module in found.items()
    ]
    try:
        yield captured
    finally:
        for h in hooks:
            h.remove()

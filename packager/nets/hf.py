"""Running a transformers model on tokenised text: its inputs, its task head, batched predictions.

Shared by the teacher and distill stages, distillation itself and the export parity check, so
"the teacher's output on these texts" means one thing everywhere.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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
        head = pool(out.last_hidden_state, batch["attention_mask"], info["pooling"], False)
    return head, out.hidden_states, out.attentions


@torch.no_grad()
def predict(model, tok, texts: list[str], task: str, info: dict, batch: int = 64) -> np.ndarray:
    """Logits or final embeddings (normalised when the model normalises) for `texts`, batched
    by length, returned in input order."""
    model.eval()
    names = input_names(model)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        head, _, _ = forward(model, feeds(tok, [texts[j] for j in idx], names), task, info)
        if task != "text-classification" and info.get("normalize"):
            head = F.normalize(head, dim=-1)
        parts.append(head.float().numpy())
    out = np.concatenate(parts)
    result = np.empty_like(out)
    result[order] = out
    return result

"""Token-level distillation losses for causal LMs, each a mean over the masked positions of
(batch, sequence, vocab) logits, and each zero when the student equals the teacher:

- forward_kl: KL(teacher || student) of the softmaxes at temperature T, times T^2 (Hinton);
- reverse_kl: KL(student || teacher) at T, times T^2 (mode-seeking; MiniLLM);
- jsd: generalized Jensen-Shannon divergence (GKD, TRL's generalized_jsd_loss): with
  M = beta * P_teacher + (1 - beta) * P_student, beta * KL(P_t || M) + (1 - beta) * KL(P_s || M);
  beta 0 is forward KL and beta 1 reverse KL, as TRL defines the ends;
- ce: next-token cross-entropy on the data's own tokens;
- topk_forward_kl: forward KL against a cached top-k teacher (DistillKit's offline form): the
  teacher's softmax over its k largest logits, the student's log-probabilities at those ids.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _mean(per_token: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return per_token.mean()
    m = mask.to(per_token.dtype)
    return (per_token * m).sum() / m.sum().clamp(min=1)


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per position, from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def forward_kl(student, teacher, temperature: float = 1.0, mask=None) -> torch.Tensor:
    t = temperature
    kl = _kl(F.log_softmax(teacher / t, -1), F.log_softmax(student / t, -1))
    return _mean(kl, mask) * t * t


def reverse_kl(student, teacher, temperature: float = 1.0, mask=None) -> torch.Tensor:
    t = temperature
    kl = _kl(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1))
    return _mean(kl, mask) * t * t


def jsd(student, teacher, beta: float = 0.5, temperature: float = 1.0, mask=None) -> torch.Tensor:
    s = F.log_softmax(student / temperature, -1)
    te = F.log_softmax(teacher / temperature, -1)
    if beta == 0:
        return _mean(_kl(te, s), mask)
    if beta == 1:
        return _mean(_kl(s, te), mask)
    mix = torch.logsumexp(torch.stack([s + math.log(1 - beta), te + math.log(beta)]), 0)
    return _mean(beta * _kl(te, mix) + (1 - beta) * _kl(s, mix), mask)


def ce(student, ids: torch.Tensor, mask=None) -> torch.Tensor:
    """Next-token CE: logits at position i predict ids[i + 1] (the last position predicts
    nothing and is dropped)."""
    logits = student[:, :-1]
    per = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
    ).view(ids.shape[0], -1)
    return _mean(per, None if mask is None else mask[:, 1:])


def topk_forward_kl(student, values, indices, temperature: float = 1.0, mask=None):
    """Forward KL on the teacher's top-k support: `values`/`indices` (batch, seq, k)."""
    t = temperature
    p_log = F.log_softmax(values.to(student.dtype) / t, -1)  # float16 in the cache
    s_log = F.log_softmax(student / t, -1).gather(-1, indices.long())
    kl = (p_log.exp() * (p_log - s_log)).sum(-1)
    return _mean(kl, mask) * t * t

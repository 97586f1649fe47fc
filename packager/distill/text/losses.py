"""Distillation losses for transformer students; each is zero when the student equals the teacher.

- logits_kd: Hinton et al. (2015), KL(teacher_T || student_T) * T^2;
- label_ce: cross-entropy with the labels;
- hidden_mse: TinyBERT's hidden-state MSE over matched layers, through a learned projection
  when the student is narrower;
- attention_kl: MiniLM's KL between the last layer's attention distributions;
- relation_kl: MiniLMv2's self-attention relations (query-query, key-key, value-value scaled
  dot products, split into relation heads) of the last layer, KL(teacher || student);
- embedding_cosine / embedding_mse: between pooled sentence embeddings.
Padding positions never count: every token-level loss is masked by the attention mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-12


def logits_kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    t = temperature
    return F.kl_div(
        F.log_softmax(student / t, dim=-1),
        F.log_softmax(teacher / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)


def label_ce(student: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(student, labels)


class Projections(nn.Module):
    """One learned student->teacher width projection per matched hidden state (none when the
    widths are equal: an identity needs no parameters and keeps the zero-loss property)."""

    def __init__(self, count: int, student_width: int, teacher_width: int):
        super().__init__()
        self.maps = nn.ModuleList(
            [nn.Linear(student_width, teacher_width) for _ in range(count)]
            if student_width != teacher_width
            else []
        )

    def forward(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return self.maps[i](x) if len(self.maps) else x


def hidden_mse(
    student_states: tuple[torch.Tensor, ...],
    teacher_states: tuple[torch.Tensor, ...],
    pairs: list[int],
    proj: Projections,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Mean over student states j of the masked MSE between proj(student[j]) and
    teacher[pairs[j]]."""
    m = mask.unsqueeze(-1).to(student_states[0].dtype)
    total = student_states[0].new_zeros(())
    for j, ti in enumerate(pairs):
        diff = (proj(j, student_states[j]) - teacher_states[ti]) * m
        total = total + diff.pow(2).sum() / (m.sum() * diff.shape[-1])
    return total / len(pairs)


def attention_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of attention rows (batch, heads, query, key), averaged over heads
    and real query tokens. With different head counts the head-averaged distributions are
    compared (MiniLM v1 needs equal counts; averaging keeps the loss defined)."""
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    kl = (teacher * (torch.log(teacher + _EPS) - torch.log(student + _EPS))).sum(-1)
    q = mask.unsqueeze(1).to(kl.dtype)  # (batch, 1, query)
    return (kl * q).sum() / (q.sum() * kl.shape[1])


def embedding_cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def embedding_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(student, teacher)


def _relations(x: torch.Tensor, heads: int, mask: torch.Tensor) -> torch.Tensor:
    """log softmax over keys of (x_h x_h^T / sqrt(d)) per relation head: (batch, heads, L, L)."""
    b, length, width = x.shape
    d = width // heads
    xh = x.reshape(b, length, heads, d).transpose(1, 2)
    scores = xh @ xh.transpose(-1, -2) / d**0.5
    scores = scores.masked_fill(mask[:, None, None, :] == 0, torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def relation_kl(
    student: dict[str, torch.Tensor],
    teacher: dict[str, torch.Tensor],
    mask: torch.Tensor,
    heads: int,
) -> torch.Tensor:
    """Mean over q, k, v of KL(teacher || student) of their self-relations, averaged over relation
    heads and real query tokens. Relations are L x L whatever the widths, so a narrower student
    learns them too (the widths must both divide by `heads`)."""
    q = mask.unsqueeze(1).to(student["query"].dtype)  # (batch, 1, query)
    total = student["query"].new_zeros(())
    for role in ("query", "key", "value"):
        ls, lt = _relations(student[role], heads, mask), _relations(teacher[role], heads, mask)
        kl = (lt.exp() * (lt - ls)).sum(-1)  # (batch, heads, query)
        total = total + (kl * q).sum() / (q.sum() * kl.shape[1])
    return total / 3

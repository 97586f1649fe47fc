"""The KD loss: zero when the student matches the teacher, weighted as documented."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from packager.distill.losses import kd_loss


def test_kd_goes_to_zero_when_student_equals_teacher():
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    assert kd_loss(logits, logits.clone(), None, temperature=4.0, alpha=1.0).abs() < 1e-6


def test_kd_is_positive_when_they_differ_and_mixes_label_ce_by_alpha():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    soft = kd_loss(s, t, None, temperature=2.0, alpha=1.0)
    assert soft > 0
    mixed = kd_loss(s, t, y, temperature=2.0, alpha=0.25)
    assert torch.allclose(mixed, 0.25 * soft + 0.75 * F.cross_entropy(s, y))
    assert torch.allclose(kd_loss(s, t, y, temperature=2.0, alpha=0.0), F.cross_entropy(s, y))

"""Token-level LM losses: zero when the student is the teacher, and each equal to its
reference formula (written out in numpy) on a small tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from packager.distill.lm import losses as L


def _logits(seed: int, shape=(2, 3, 7)) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(0, 2, shape)).double()


def _softmax(x: np.ndarray, t: float = 1.0) -> np.ndarray:
    e = np.exp(x / t - (x / t).max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * (np.log(p) - np.log(q))).sum(-1)


@pytest.mark.parametrize(
    "loss",
    [
        lambda s, t: L.forward_kl(s, t, 2.0),
        lambda s, t: L.reverse_kl(s, t, 2.0),
        lambda s, t: L.jsd(s, t, 0.5),
        lambda s, t: L.jsd(s, t, 0.0),
        lambda s, t: L.jsd(s, t, 1.0),
        lambda s, t: L.topk_forward_kl(s, *t.topk(7, -1)),
    ],
)
def test_every_lm_loss_is_zero_when_the_student_is_the_teacher(loss):
    t = _logits(0)
    assert float(loss(t.clone(), t)) == pytest.approx(0.0, abs=1e-12)


def test_forward_and_reverse_kl_match_their_formulas_at_temperature():
    s, t, T = _logits(1), _logits(2), 2.0
    ps, pt = _softmax(s.numpy(), T), _softmax(t.numpy(), T)
    assert float(L.forward_kl(s, t, T)) == pytest.approx(_kl(pt, ps).mean() * T * T, rel=1e-9)
    assert float(L.reverse_kl(s, t, T)) == pytest.approx(_kl(ps, pt).mean() * T * T, rel=1e-9)


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_generalized_jsd_matches_gkd_with_its_beta(beta):
    s, t = _logits(3), _logits(4)
    ps, pt = _softmax(s.numpy()), _softmax(t.numpy())
    m = beta * pt + (1 - beta) * ps
    ref = (beta * _kl(pt, m) + (1 - beta) * _kl(ps, m)).mean()
    assert float(L.jsd(s, t, beta)) == pytest.approx(ref, rel=1e-9)


def test_jsd_ends_are_forward_and_reverse_kl_as_trl_defines_them():
    s, t = _logits(5), _logits(6)
    assert float(L.jsd(s, t, 0.0)) == pytest.approx(float(L.forward_kl(s, t)), rel=1e-12)
    assert float(L.jsd(s, t, 1.0)) == pytest.approx(float(L.reverse_kl(s, t)), rel=1e-12)


def test_ce_predicts_the_next_token_and_respects_the_mask():
    s = _logits(7)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    p = _softmax(s.numpy())
    ref = -np.mean([np.log(p[b, i, ids[b, i + 1]]) for b in range(2) for i in range(2)])
    assert float(L.ce(s, ids)) == pytest.approx(ref, rel=1e-9)
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]])  # targets 3 (row 0) and 5 (row 1) masked out
    keep = [(0, 0), (1, 1)]
    masked = -np.mean([np.log(p[b, i, ids[b, i + 1]]) for b, i in keep])
    assert float(L.ce(s, ids, mask)) == pytest.approx(masked, rel=1e-9)


def test_topk_kl_is_the_forward_kl_on_the_teachers_top_k_support():
    s, t, k = _logits(8), _logits(9), 3
    values, indices = t.topk(k, -1)
    pt = _softmax(values.numpy())
    ls = np.log(_softmax(s.numpy()))
    ls_k = np.take_along_axis(ls, indices.numpy(), -1)
    ref = (pt * (np.log(pt) - ls_k)).sum(-1).mean()
    assert float(L.topk_forward_kl(s, values, indices)) == pytest.approx(ref, rel=1e-9)

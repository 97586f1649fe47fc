"""Each distillation loss is zero when the student equals the teacher, and positive when not."""

from __future__ import annotations

import pytest
import torch

from packager.distill.text import losses as L
from packager.nets.text import pool


@pytest.fixture
def outputs(tiny_classifier):
    from packager.sources.hf import load_model

    model = load_model(tiny_classifier, "text-classification", eager_attention=True)
    ids = torch.tensor([[2, 10, 20, 30, 3, 0], [2, 11, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        out = model(
            input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True
        )
    return out, mask


def _other(out):
    """The same outputs, perturbed: what a student that is not the teacher gives."""
    g = torch.Generator().manual_seed(0)
    noise = lambda t: t + 0.1 * torch.randn(t.shape, generator=g)  # noqa: E731
    att = torch.softmax(
        torch.log(out.attentions[-1] + 1e-9) + torch.randn(out.attentions[-1].shape, generator=g),
        -1,
    )
    return noise(out.logits), tuple(noise(h) for h in out.hidden_states), att


def test_logits_kd_and_label_ce(outputs):
    out, _ = outputs
    logits, _, _ = _other(out)
    assert L.logits_kd(out.logits, out.logits, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert L.logits_kd(logits, out.logits, 4.0).item() > 1e-4
    confident = torch.tensor([[50.0, 0.0, 0.0]])  # CE is zero when the student is sure and right
    assert L.label_ce(confident, torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-6)
    assert L.label_ce(confident, torch.tensor([1])).item() > 1.0


def test_hidden_mse_with_and_without_projection(outputs):
    out, mask = outputs
    _, states, _ = _other(out)
    pairs = [0, 2, 4]
    same = tuple(out.hidden_states[i] for i in pairs)
    ident = L.Projections(3, 32, 32)
    assert len(list(ident.parameters())) == 0
    assert L.hidden_mse(same, out.hidden_states, [0, 2, 4], ident, mask).item() == pytest.approx(
        0.0, abs=1e-9
    )
    assert (
        L.hidden_mse(tuple(states[i] for i in pairs), out.hidden_states, pairs, ident, mask).item()
        > 1e-4
    )
    # A narrower student goes through a learned projection: zero when it maps back exactly.
    proj = L.Projections(3, 16, 32)
    basis = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(1)))[0][
        :, :16
    ]
    with torch.no_grad():
        for m in proj.maps:
            m.weight.copy_(basis)
            m.bias.zero_()
    low = tuple((h @ basis) @ basis.T for h in same)  # states living in the 16-d subspace
    narrow = tuple(h @ basis for h in low)
    assert L.hidden_mse(
        narrow, [low[0], None, low[1], None, low[2]], pairs, proj, mask
    ).item() == pytest.approx(0.0, abs=1e-9)


def test_padding_never_counts_in_token_losses(outputs):
    out, mask = outputs
    noisy = tuple(h.clone() for h in out.hidden_states)
    for h in noisy:
        h[mask == 0] += 100.0  # garbage only where the mask is 0
    ident = L.Projections(1, 32, 32)
    assert L.hidden_mse(noisy[-1:], out.hidden_states, [4], ident, mask).item() == pytest.approx(
        0.0, abs=1e-9
    )


def test_attention_kl_same_heads_and_head_averaged(outputs):
    out, mask = outputs
    _, _, att = _other(out)
    t = out.attentions[-1]
    assert L.attention_kl(t, t, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert L.attention_kl(att, t, mask).item() > 1e-3
    # fewer student heads: head-averaged distributions are compared
    two = t.reshape(2, 2, 2, *t.shape[2:]).mean(2)  # 4 heads -> 2 heads with the same average
    assert L.attention_kl(two, t, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_embedding_cosine_and_mse(outputs):
    out, mask = outputs
    e = pool(out.hidden_states[-1], mask, "mean", False)
    assert L.embedding_cosine(e, e).item() == pytest.approx(0.0, abs=1e-6)
    assert L.embedding_mse(e, e).item() == 0.0
    assert L.embedding_cosine(-e, e).item() == pytest.approx(2.0, abs=1e-5)
    assert L.embedding_mse(e + 0.5, e).item() == pytest.approx(0.25)


def _qkv(tiny_classifier, ids, mask):
    from packager.nets.text import attention_projections
    from packager.sources.hf import load_model

    model = load_model(tiny_classifier, "text-classification")
    with torch.no_grad(), attention_projections(model) as qkv:
        model(input_ids=ids, attention_mask=mask)
    return dict(qkv)


def test_relation_kl_is_zero_for_the_teacher_itself_and_matches_its_formula(tiny_classifier):
    ids = torch.tensor([[2, 10, 20, 30, 3, 0], [2, 11, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    t = _qkv(tiny_classifier, ids, mask)
    assert {k: v.shape for k, v in t.items()} == dict.fromkeys(
        ("query", "key", "value"), (2, 6, 32)
    )
    assert L.relation_kl(t, t, mask, heads=4).item() == pytest.approx(0.0, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    s = {k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in t.items()}
    got = L.relation_kl(s, t, mask, heads=4).item()

    def reference():  # the definition, one sample, head and query at a time
        total = []
        for role in ("query", "key", "value"):
            per = []
            for b in range(2):
                n = int(mask[b].sum())
                for h in range(4):
                    xs, xt = (
                        s[role][b, :n, h * 8 : (h + 1) * 8],
                        t[role][b, :n, h * 8 : (h + 1) * 8],
                    )
                    ps = torch.softmax(xs @ xs.T / 8**0.5, -1)
                    pt = torch.softmax(xt @ xt.T / 8**0.5, -1)
                    per += list((pt * (pt.log() - ps.log())).sum(-1))
            total.append(torch.stack(per).mean())
        return torch.stack(total).mean().item()

    assert got > 0.01 and got == pytest.approx(reference(), rel=1e-4)

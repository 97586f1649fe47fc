"""The causal-LM distillation loop: weighted losses, CE only on data tokens, and the on-policy
fraction (the student samples continuations, the teacher scores them)."""

from __future__ import annotations

import torch

from packager.config import CausalStudentConfig
from packager.distill.lm.student import derive_causal_student
from packager.distill.lm.trainer import LMTrainSettings, loss_terms, train_lm


def _pair(tiny_lm_teacher):
    from packager.sources.lm import load_causal_lm

    teacher = load_causal_lm(tiny_lm_teacher)
    ids = torch.randint(
        2, teacher.config.vocab_size, (4, 16), generator=torch.Generator().manual_seed(0)
    )
    student, _, _ = derive_causal_student(teacher, CausalStudentConfig(num_layers=2), ids)
    return teacher, student, ids


def test_ce_is_left_out_on_the_students_own_samples():
    s = LMTrainSettings(weights={"logits_kd": 1.0, "label_ce": 1.0, "jsd": 0.5, "reverse_kl": 0.5})
    logits, ids = torch.randn(2, 5, 9), torch.randint(0, 9, (2, 5))
    data = loss_terms(s, logits, ids, torch.randn(2, 5, 9))
    sampled = loss_terms(s, logits, ids, torch.randn(2, 5, 9), data=False)
    assert set(data) == {"logits_kd", "label_ce", "jsd", "reverse_kl"}
    assert set(sampled) == {"logits_kd", "jsd", "reverse_kl"}


def test_on_policy_batches_are_sampled_by_the_student_and_scored_by_the_teacher(tiny_lm_teacher):
    teacher, student, ids = _pair(tiny_lm_teacher)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    s = LMTrainSettings(
        weights={"jsd": 1.0, "reverse_kl": 0.5},
        on_policy=1.0,
        on_policy_tokens=4,
        batch_size=4,
        max_steps=2,
        epochs=2,
    )
    res = train_lm(teacher, student, lambda: iter([(0, ids)]), 1, s)
    assert res.steps == 2 and res.on_policy_batches == 2
    assert any(not torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_off_policy_training_lowers_the_kd_loss(tiny_lm_teacher):
    teacher, student, ids = _pair(tiny_lm_teacher)
    s = LMTrainSettings(weights={"logits_kd": 1.0}, batch_size=4, lr=0.01, epochs=30)
    res = train_lm(teacher, student, lambda: iter([(0, ids)]), 1, s)
    assert (
        res.on_policy_batches == 0
        and res.curve[-1]["train_loss"] < 0.5 * res.curve[0]["train_loss"]
    )

"""Student derivation: which teacher layers are kept, and that their weights are copied."""

from __future__ import annotations

import pytest
import torch

from packager.config import TransformerStudentConfig as S
from packager.distill.text.transformer import derive_student, init_kind, select_layers
from packager.errors import RecipeError


@pytest.mark.parametrize(
    ("n", "spec", "ids"),
    [
        (6, S(), [1, 3, 5]),
        (12, S(), [1, 3, 5, 7, 9, 11]),
        (6, S(num_layers=2), [2, 5]),
        (6, S(layers="first-k", num_layers=2), [0, 1]),
        (6, S(layers=(5, 0, 3)), [0, 3, 5]),
        (4, S(num_layers=4), [0, 1, 2, 3]),
    ],
)
def test_layer_selection_picks_the_documented_layers(n, spec, ids):
    assert select_layers(n, spec) == ids


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (S(layers=(0, 6)), "teacher has layers 0..5"),
        (S(num_layers=7), "has only 6"),
        (S(layers=(0, 1), num_layers=3), "give one or the other"),
    ],
)
def test_impossible_selections_are_one_line_recipe_errors(spec, match):
    with pytest.raises(RecipeError, match=match):
        select_layers(6, spec)


def _load(folder, task="text-classification"):
    from packager.sources.hf import load_model

    return load_model(folder, task)


def test_kept_layers_embeddings_and_head_are_copied_from_the_teacher(tiny_classifier):
    teacher = _load(tiny_classifier)
    student, ids = derive_student(teacher, S(layers=(0, 3)))
    assert ids == [0, 3] and student.config.num_hidden_layers == 2
    t, s = teacher.state_dict(), student.state_dict()
    for j, i in enumerate(ids):
        for name in (
            "attention.self.query.weight",
            "intermediate.dense.bias",
            "output.LayerNorm.weight",
        ):
            assert torch.equal(
                s[f"bert.encoder.layer.{j}.{name}"], t[f"bert.encoder.layer.{i}.{name}"]
            )
    # layer 1 of the student is the teacher's layer 3, not its layer 1
    assert not torch.equal(
        s["bert.encoder.layer.1.attention.self.query.weight"],
        t["bert.encoder.layer.1.attention.self.query.weight"],
    )
    for name in (
        "bert.embeddings.word_embeddings.weight",
        "bert.pooler.dense.weight",
        "classifier.weight",
    ):
        assert torch.equal(s[name], t[name])


def test_student_keeping_every_layer_computes_what_the_teacher_computes(tiny_classifier):
    teacher = _load(tiny_classifier)
    student, _ = derive_student(teacher, S(num_layers=4))
    ids = torch.tensor([[2, 10, 20, 30, 3]])
    with torch.no_grad():
        assert torch.allclose(student(input_ids=ids).logits, teacher(input_ids=ids).logits)


def test_narrower_student_is_a_fresh_model_of_the_same_architecture(tiny_classifier, tmp_path):
    teacher = _load(tiny_classifier)
    spec = S(num_layers=2, hidden_size=16, num_heads=2)
    assert init_kind(teacher.config, spec) == "fresh"
    student, ids = derive_student(teacher, spec)
    assert type(student) is type(teacher) and ids == [1, 3]
    cfg = student.config
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (16, 2, 32)
    student.save_pretrained(tmp_path)  # a plain transformers model, loadable by anyone
    assert _load(tmp_path).config.hidden_size == 16
    with pytest.raises(RecipeError, match="not a multiple"):
        derive_student(teacher, S(hidden_size=30, num_heads=4))


def test_narrower_feed_forward_keeps_the_strongest_teacher_neurons(tiny_classifier):
    teacher = _load(tiny_classifier)
    spec = S(layers=(2,), intermediate_size=16)
    assert init_kind(teacher.config, spec) == "pruned-ffn"
    student, _ = derive_student(teacher, spec)
    t, s = teacher.state_dict(), student.state_dict()
    up, down = (
        t["bert.encoder.layer.2.intermediate.dense.weight"],
        t["bert.encoder.layer.2.output.dense.weight"],
    )
    keep = (up.norm(dim=1) * down.norm(dim=0)).topk(16).indices.sort().values
    assert torch.equal(s["bert.encoder.layer.0.intermediate.dense.weight"], up[keep])
    assert torch.equal(
        s["bert.encoder.layer.0.intermediate.dense.bias"],
        t["bert.encoder.layer.2.intermediate.dense.bias"][keep],
    )
    assert torch.equal(s["bert.encoder.layer.0.output.dense.weight"], down[:, keep])
    assert torch.equal(
        s["bert.encoder.layer.0.attention.self.key.weight"],
        t["bert.encoder.layer.2.attention.self.key.weight"],
    )
    assert init_kind(teacher.config, S(intermediate_size=64, hidden_size=32)) == "copied"
    with pytest.raises(RecipeError, match="narrower feed-forward"):
        derive_student(teacher, S(intermediate_size=128))


def test_sample_text_ranks_feed_forward_neurons_by_what_they_carry(tiny_classifier):
    teacher = _load(tiny_classifier)
    ids = torch.tensor([[2, 10, 20, 30, 3], [2, 11, 12, 3, 0]])
    sample = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    seen = {}
    layer = teacher.bert.encoder.layer[2]
    hook = layer.output.dense.register_forward_pre_hook(lambda _m, a: seen.setdefault("a", a[0]))
    with torch.no_grad():
        teacher(**sample)
    hook.remove()
    m = sample["attention_mask"].unsqueeze(-1).float()
    act = (seen["a"].abs() * m).sum((0, 1)) / m.sum()
    keep = (act * layer.output.dense.weight.norm(dim=0)).topk(16).indices.sort().values
    student, _ = derive_student(teacher, S(layers=(2,), intermediate_size=16), sample)
    got = student.state_dict()["bert.encoder.layer.0.output.dense.weight"]
    assert torch.equal(got, layer.output.dense.weight[:, keep])
    by_weights, _ = derive_student(teacher, S(layers=(2,), intermediate_size=16))
    assert not torch.equal(by_weights.state_dict()["bert.encoder.layer.0.output.dense.weight"], got)

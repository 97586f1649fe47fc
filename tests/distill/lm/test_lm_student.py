"""Causal-LM students derived from the teacher: which layers are kept, MLP neurons ranked by
activation and copied, for every family the tests build (Llama, Qwen2, Qwen3, GPT-2, Phi-3)."""

from __future__ import annotations

import pytest
import torch

from packager.config import CausalStudentConfig
from packager.distill.lm.student import choose_layers, derive_causal_student, neuron_activity
from packager.errors import RecipeError


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    from tiny_models import LM_FAMILIES, tiny_causal_lm_folder

    from packager.sources.lm import load_causal_lm

    root = tmp_path_factory.mktemp("families")
    return {f: load_causal_lm(tiny_causal_lm_folder(root / f, f, layers=4)) for f in LM_FAMILIES}


def _sample(model) -> torch.Tensor:
    return torch.randint(
        2, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0)
    )


def test_layer_choices_every_other_first_k_and_a_list(teachers):
    t = teachers["llama"]
    pick = lambda **kw: choose_layers(t, CausalStudentConfig(**kw), None)  # noqa: E731
    assert pick(num_layers=2) == [1, 3]
    assert pick(layers="first-k", num_layers=3) == [0, 1, 2]
    assert pick(layers=[0, 2]) == [0, 2]
    with pytest.raises(RecipeError, match="only 4"):
        pick(num_layers=5)


def test_block_importance_keeps_the_layers_that_change_their_input_most(teachers):
    from packager.nets.lm import block_importance

    t = teachers["llama"]
    sample = _sample(t)
    scores = block_importance(t, sample)
    kept = choose_layers(t, CausalStudentConfig(layers="block-importance", num_layers=2), sample)
    assert kept == sorted(sorted(range(4), key=lambda i: -scores[i])[:2])


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3", "gpt2", "phi3"])
def test_derived_student_copies_the_kept_layers_and_runs(teachers, family):
    t = teachers[family]
    spec = CausalStudentConfig(num_layers=2)
    student, ids, init = derive_causal_student(t, spec, _sample(t))
    assert ids == [1, 3] and init == "copied" and student.config.num_hidden_layers == 2
    ts, ss = t.state_dict(), student.state_dict()
    prefix = "transformer.h" if family == "gpt2" else "model.layers"
    mapping = {f"{prefix}.{j}.": f"{prefix}.{i}." for j, i in enumerate(ids)}
    for key, value in ss.items():
        src = next((b + key[len(a) :] for a, b in mapping.items() if key.startswith(a)), key)
        assert torch.equal(value, ts[src]), key
    out = student(input_ids=_sample(t)).logits
    assert out.shape[-1] == t.config.vocab_size


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "phi3"])
def test_narrower_mlps_keep_the_most_active_neurons_with_their_weights(teachers, family):
    t = teachers[family]
    sample = _sample(t)
    spec = CausalStudentConfig(num_layers=2, intermediate_size=16)
    student, ids, init = derive_causal_student(t, spec, sample)
    assert init == "pruned-ffn"
    acts = neuron_activity(t, sample, 64)
    keep = acts[ids[0]].topk(16).indices.sort().values
    if family == "gpt2":
        got, full = (
            student.transformer.h[0].mlp.c_fc.weight,
            t.transformer.h[ids[0]].mlp.c_fc.weight,
        )
        assert torch.equal(got, full[:, keep])
    elif family == "phi3":
        got, full = (
            student.model.layers[0].mlp.gate_up_proj.weight,
            t.model.layers[ids[0]].mlp.gate_up_proj.weight,
        )
        assert torch.equal(got, full[torch.cat([keep, keep + 64])])
    else:
        got, full = (
            student.model.layers[0].mlp.up_proj.weight,
            t.model.layers[ids[0]].mlp.up_proj.weight,
        )
        assert torch.equal(got, full[keep])
    assert student(input_ids=sample).logits.shape[-1] == t.config.vocab_size


def test_a_wider_mlp_than_the_teachers_is_refused(teachers):
    t = teachers["llama"]
    with pytest.raises(RecipeError, match="narrower"):
        derive_causal_student(
            t, CausalStudentConfig(num_layers=2, intermediate_size=128), _sample(t)
        )

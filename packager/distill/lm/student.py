"""Causal-LM students derived from the teacher: k of its n decoder layers copied (every-other,
first-k, an explicit list, or ShortGPT/Minitron block importance: the k layers whose output
differs most from their input on sample text), optionally with narrower MLPs (each kept
layer keeps the neurons with the largest mean |activation| on sample text, weights copied).

Works on any decoder-only transformers model whose layers are one ModuleList and whose MLP
width is `intermediate_size` (Llama, Qwen2/Qwen3, Phi-3 with its fused gate_up_proj, Mistral)
or GPT-2's `n_inner` (Conv1D weights, transposed).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from packager.config import CausalStudentConfig
from packager.distill.text.transformer import layer_list, select_layers
from packager.errors import RecipeError


def mlp_width(config) -> int:
    if getattr(config, "model_type", "") == "gpt2":
        return config.n_inner or 4 * config.n_embd
    width = getattr(config, "intermediate_size", None)
    if width is None:
        raise RecipeError(f"{config.model_type}: no intermediate_size to prune the MLPs by")
    return width


def choose_layers(teacher, spec: CausalStudentConfig, sample: torch.Tensor | None) -> list[int]:
    """The teacher layers the student keeps, in order."""
    n = teacher.config.num_hidden_layers
    if spec.layers != "block-importance":
        return select_layers(n, spec)
    from packager.nets.lm import block_importance

    k = spec.num_layers if spec.num_layers is not None else max(1, n // 2)
    if k > n:
        raise RecipeError(f"distill.student.num_layers = {k}, but the teacher has only {n}")
    if sample is None:
        raise RecipeError("block-importance needs sample text to score the layers")
    scores = block_importance(teacher, sample)
    return sorted(sorted(range(n), key=lambda i: -scores[i])[:k])


def _down_projections(layers: nn.ModuleList, width: int) -> list[nn.Module]:
    """Each layer's MLP output projection: the module whose input is the width-wide activation."""
    out = []
    for i, layer in enumerate(layers):
        mlp = getattr(layer, "mlp", None)
        down = getattr(mlp, "down_proj", None) or getattr(mlp, "c_proj", None)
        if down is None:
            raise RecipeError(f"layer {i}: no mlp.down_proj / mlp.c_proj to rank neurons by")
        out.append(down)
    return out


def neuron_activity(teacher, sample: torch.Tensor, width: int) -> list[torch.Tensor]:
    """Mean |activation| per MLP neuron and layer over the sample's tokens."""
    _, layers = layer_list(teacher)
    acts: list[torch.Tensor | None] = [None] * len(layers)
    hooks = []
    for i, down in enumerate(_down_projections(layers, width)):

        def record(_mod, args, i=i):
            x = args[0].abs().reshape(-1, args[0].shape[-1])
            acts[i] = x.mean(0)

        hooks.append(down.register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            teacher(input_ids=sample)
    finally:
        for h in hooks:
            h.remove()
    return [a for a in acts]  # type: ignore[misc]


def _pruned(name: str, value: torch.Tensor, width: int, keep: torch.Tensor) -> torch.Tensor:
    """A kept layer's MLP tensor with only the `keep` neurons: every axis of the MLP width, and
    Phi-3's fused gate_up_proj (gate rows, then up rows) on its doubled axis."""
    for axis, size in enumerate(value.shape):
        if size == width:
            value = value.index_select(axis, keep)
        elif size == 2 * width and "gate_up" in name:
            value = value.index_select(axis, torch.cat([keep, keep + width]))
    return value


def derive_causal_student(
    teacher, spec: CausalStudentConfig, sample: torch.Tensor | None
) -> tuple[Any, list[int], str]:
    """(student, the teacher layer each student layer copies, how it was initialised)."""
    ids = choose_layers(teacher, spec, sample)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(ids)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [teacher.config.layer_types[i] for i in ids]
    width = mlp_width(teacher.config)
    new = spec.intermediate_size
    init = "copied"
    if new is not None and new != width:
        if new > width or width == config.hidden_size:
            raise RecipeError(
                f"distill.student.intermediate_size {new}: copied layers can only get narrower "
                f"MLPs than the teacher's {width}"
            )
        if config.model_type == "gpt2":
            config.n_inner = new
        else:
            config.intermediate_size = new
        init = "pruned-ffn"
    student = type(teacher)(config)
    prefix, _ = layer_list(teacher)
    source = teacher.state_dict()
    acts = (
        neuron_activity(teacher, sample, width)
        if init == "pruned-ffn" and sample is not None
        else None
    )
    keep: dict[int, torch.Tensor] = {}
    state = {}
    for key, like in student.state_dict().items():
        src, i = key, None
        if key.startswith(prefix + "."):
            j, rest = key[len(prefix) + 1 :].split(".", 1)
            i = ids[int(j)]
            src = f"{prefix}.{i}.{rest}"
        value = source[src].detach().clone()
        if value.shape != like.shape and i is not None:
            if i not in keep:
                score = acts[i] if acts is not None else torch.ones(width)
                keep[i] = score.topk(new).indices.sort().values
            value = _pruned(key, value, width, keep[i])
        if value.shape != like.shape:
            raise RecipeError(f"cannot derive {key}: {tuple(value.shape)} vs {tuple(like.shape)}")
        state[key] = value
    student.load_state_dict(state)
    student.generation_config = copy.deepcopy(teacher.generation_config)
    return student.eval(), ids, init

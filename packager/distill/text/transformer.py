"""Students derived from a transformers teacher.

Layer dropping (DistilBERT's recipe): the student is the teacher's architecture with k of its n
layers, each initialised from the teacher layer it replaces, and the embeddings, pooler and
classifier copied. A narrower feed-forward keeps each copied layer's strongest neurons
(structured magnitude pruning). With a narrower hidden size or fewer heads the weights cannot be
copied, so the student starts from a fresh init of the same architecture.
Either way the student is a plain transformers model, saved with `save_pretrained`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from packager.errors import RecipeError
from packager.nets.text import layer_list as _layer_list

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from packager.config import TransformerStudentConfig


def select_layers(n: int, spec: TransformerStudentConfig) -> list[int]:
    """Indices of the teacher layers the student keeps, in order."""
    if isinstance(spec.layers, tuple):
        if spec.num_layers is not None and spec.num_layers != len(spec.layers):
            raise RecipeError(
                f"distill.student: num_layers = {spec.num_layers} but layers lists "
                f"{len(spec.layers)}; give one or the other"
            )
        bad = [i for i in spec.layers if i >= n]
        if bad:
            raise RecipeError(
                f"distill.student.layers {list(spec.layers)}: the teacher has layers 0..{n - 1}"
            )
        return sorted(spec.layers)
    k = spec.num_layers if spec.num_layers is not None else max(1, n // 2)
    if k > n:
        raise RecipeError(f"distill.student.num_layers = {k}, but the teacher has only {n}")
    if spec.layers == "first-k":
        return list(range(k))
    # every-other: evenly spaced, ending at the top layer (it feeds the head and the pooling);
    # with k = n / 2 this is exactly every other layer, 1, 3, 5, ...
    return [round((i + 1) * n / k) - 1 for i in range(k)]


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    try:
        return _layer_list(model)
    except ValueError as err:
        raise RecipeError(f"{err} to derive a student") from None


def init_kind(teacher_config, spec: TransformerStudentConfig) -> str:
    """How the student starts: "copied" layers, copied with a "pruned-ffn" (the strongest
    feed-forward neurons kept), or "fresh" when the width or head count changes."""
    changed = lambda v, t: v is not None and v != t  # noqa: E731
    if changed(spec.hidden_size, teacher_config.hidden_size) or changed(
        spec.num_heads, teacher_config.num_attention_heads
    ):
        return "fresh"
    if changed(spec.intermediate_size, getattr(teacher_config, "intermediate_size", None)):
        return "pruned-ffn"
    return "copied"


def derive_student(
    teacher: PreTrainedModel,
    spec: TransformerStudentConfig,
    sample: dict[str, torch.Tensor] | None = None,
) -> tuple[PreTrainedModel, list[int]]:
    """The student and the teacher layer each student layer stands for. `sample` (model feeds
    of a few texts) ranks feed-forward neurons by how much they carry on real text when the
    student's feed-forward is narrower; without it the weights alone rank them."""
    n = teacher.config.num_hidden_layers
    ids = select_layers(n, spec)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(ids)
    kind = init_kind(teacher.config, spec)
    if kind == "fresh":
        return _fresh(teacher, config, spec), ids
    ffn = getattr(teacher.config, "intermediate_size", None)
    if kind == "pruned-ffn":
        if not spec.intermediate_size < ffn or ffn == teacher.config.hidden_size:
            raise RecipeError(
                f"distill.student.intermediate_size {spec.intermediate_size}: copied layers can "
                f"only get a narrower feed-forward than the teacher's {ffn}"
            )
        config.intermediate_size = spec.intermediate_size
    student = type(teacher)(config)
    prefix, layers = layer_list(teacher)
    source = teacher.state_dict()
    acts = _ffn_activations(teacher, layers, ffn, sample) if kind == "pruned-ffn" else {}
    keep: dict[int, torch.Tensor] = {}
    state = {}
    for key, like in student.state_dict().items():
        src, j = key, None
        if key.startswith(prefix + "."):
            j, rest = key[len(prefix) + 1 :].split(".", 1)
            src = f"{prefix}.{ids[int(j)]}.{rest}"
        value = source[src].detach().clone()
        if value.shape != like.shape and j is not None:
            i = ids[int(j)]
            if i not in keep:
                keep[i] = _strongest_neurons(
                    source, f"{prefix}.{i}.", ffn, config.intermediate_size, acts.get(i)
                )
            for axis, (a, b) in enumerate(zip(value.shape, like.shape, strict=True)):
                if a != b:
                    value = value.index_select(axis, keep[i])
        state[key] = value
    student.load_state_dict(state)
    return student.eval(), ids


def _ffn_activations(
    teacher: nn.Module, layers: nn.ModuleList, ffn: int, sample: dict | None
) -> dict[int, torch.Tensor]:
    """Mean |activation| of each feed-forward neuron over the sample's real tokens, per layer:
    the input of the layer's Linear that reads the ffn-wide activations."""
    if sample is None:
        return {}
    mask = sample["attention_mask"].unsqueeze(-1).float()
    acts: dict[int, torch.Tensor] = {}
    hooks = []
    for i, layer in enumerate(layers):
        down = [m for m in layer.modules() if isinstance(m, nn.Linear) and m.in_features == ffn]
        if len(down) != 1:
            raise RecipeError(f"cannot find the feed-forward output projection of layer {i}")

        def record(_mod, args, i=i):
            acts[i] = (args[0].abs() * mask).sum((0, 1)) / mask.sum()

        hooks.append(down[0].register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            teacher(**sample)
    finally:
        for h in hooks:
            h.remove()
    return acts


def _strongest_neurons(
    state: dict, layer: str, ffn: int, k: int, activation: torch.Tensor | None = None
) -> torch.Tensor:
    """Indices of the k feed-forward neurons that carry the most into the layer's output, in
    their original order: mean |activation| on sample text x |w_out| (structured pruning by
    contribution), or |w_in| x |w_out| when there is no sample."""
    ws = {n: w for n, w in state.items() if n.startswith(layer) and w.ndim == 2}
    up = [w for w in ws.values() if w.shape[0] == ffn and w.shape[1] != ffn]
    down = [w for w in ws.values() if w.shape[1] == ffn and w.shape[0] != ffn]
    if len(up) != 1 or len(down) != 1:
        raise RecipeError(f"cannot find the feed-forward weights of {layer.rstrip('.')}")
    strength = activation if activation is not None else up[0].norm(dim=1)
    score = strength * down[0].norm(dim=0)
    return score.topk(k).indices.sort().values


def _fresh(teacher: PreTrainedModel, config, spec: TransformerStudentConfig) -> PreTrainedModel:
    hidden = spec.hidden_size or config.hidden_size
    heads = spec.num_heads or config.num_attention_heads
    if hidden % heads:
        raise RecipeError(
            f"distill.student: hidden_size {hidden} is not a multiple of num_heads {heads}"
        )
    config.hidden_size = hidden
    config.num_attention_heads = heads
    ffn = getattr(config, "intermediate_size", None)  # DistilBERT calls it hidden_dim
    if ffn is not None and (spec.intermediate_size or hidden != teacher.config.hidden_size):
        # Keep the teacher's feed-forward ratio unless a width is given.
        config.intermediate_size = spec.intermediate_size or int(
            hidden * ffn / teacher.config.hidden_size
        )
    return type(teacher)(config).eval()


def matched_states(ids: list[int]) -> list[int]:
    """Teacher hidden-state index for each student hidden state (index 0: the embeddings)."""
    return [0] + [i + 1 for i in ids]

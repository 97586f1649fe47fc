"""The one home for tiny test models and recipes, built on the fly (no downloads)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from packager.recipe import Recipe, build_recipe


def tiny_recipe_dict(**sections: Any) -> dict[str, Any]:
    """A digits recipe small enough to build in seconds: tiny teacher, few epochs, few runs."""
    base: dict[str, Any] = {
        "name": "digits-tiny",
        "teacher": {
            "source": "builtin:digits-cnn",
            "kwargs": {"channels": [8, 16], "hidden": 64},
            "train": {"epochs": 4, "seed": 0, "lr": 0.01},
        },
        "data": {"source": "builtin:digits", "limit": 600},
        "distill": {
            "student": {"arch": "mlp", "hidden": 16},
            "epochs": 6,
            "patience": 3,
            "lr": 0.01,
        },
        "quantize": {"mode": "static", "calib_samples": 64},
        "evaluate": {"max_drop": 0.1},
        "bench": {"runs": 20, "warmup": 2},
        "package": {"samples": 4},
    }
    for name, value in sections.items():
        base[name] = {**base.get(name, {}), **value} if isinstance(value, dict) else value
    return base


def tiny_recipe(**sections: Any) -> Recipe:
    return build_recipe(tiny_recipe_dict(**sections))


class TinyNet(nn.Module):
    """A user's own teacher for `python:tiny_models:make_tiny_net` (8x8 digits in, 10 logits out)."""

    def __init__(self, hidden: int = 24):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_tiny_net(hidden: int = 24) -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(hidden)


def not_a_module() -> str:
    return "nope"

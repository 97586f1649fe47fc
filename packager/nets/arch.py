"""Architectures for array data (the builtin digits teacher, the cnn/mlp students) and their I/O.

Torch artifacts are stored as safetensors weights plus {"factory": "module:function", "kwargs"},
never as pickles, so loading one runs no code from the file.
"""

from __future__ import annotations

import importlib
import itertools
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from packager.errors import InputFileError, RecipeError


class ConvNet(nn.Module):
    """Conv blocks (3x3, BN, ReLU; 2x2 pool after the second), global-free flatten, MLP head."""

    def __init__(self, in_shape: list[int], num_classes: int, channels: list[int], hidden: int):
        super().__init__()
        c, h, w = in_shape
        layers: list[nn.Module] = []
        for i, width in enumerate(channels):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            if i == 1 or (len(channels) == 1 and i == 0):
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    def __init__(self, in_shape: list[int], num_classes: int, hidden: int, layers: int = 1):
        super().__init__()
        dims = [math.prod(in_shape)] + [hidden] * layers
        body: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(dims):
            body += [nn.Linear(a, b), nn.ReLU()]
        body.append(nn.Linear(dims[-1], num_classes))
        self.net = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def cnn(in_shape: list[int], num_classes: int, channels: list[int], hidden: int) -> nn.Module:
    if len(in_shape) != 3:
        raise RecipeError(
            f"distill.student.arch = cnn needs (C, H, W) samples, got shape {in_shape}"
        )
    return ConvNet(in_shape, num_classes, channels, hidden)


def mlp(in_shape: list[int], num_classes: int, hidden: int, layers: int = 1) -> nn.Module:
    return MLP(in_shape, num_classes, hidden, layers)


def digits_cnn_teacher(
    in_shape: list[int], num_classes: int, channels: list[int] = (32, 64, 128), hidden: int = 256
) -> nn.Module:
    """The builtin teacher: wide enough to be the accurate, slow model a student improves on.
    `teacher.kwargs` can shrink it (the tests do)."""
    return cnn(in_shape, num_classes, channels=list(channels), hidden=hidden)


def resolve_factory(spec: str, import_path: str | None = None):
    """The callable `MODULE:FUNCTION` names; `import_path` (a folder) is searched first."""
    import sys

    module_name, _, fn_name = spec.partition(":")
    if import_path and import_path not in sys.path:
        sys.path.insert(0, import_path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise RecipeError(f"factory {spec}: cannot import module {module_name!r} ({err})") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise RecipeError(f"factory {spec}: {module_name} has no callable {fn_name!r}")
    return fn


def build(factory: str, kwargs: dict[str, Any], import_path: str | None = None) -> nn.Module:
    model = resolve_factory(factory, import_path)(**kwargs)
    if not isinstance(model, nn.Module):
        raise RecipeError(
            f"factory {factory} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_torch(
    model: nn.Module,
    folder: Path,
    factory: str,
    kwargs: dict[str, Any],
    import_path: str | None = None,
) -> dict[str, Any]:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    return {
        "file": "model.safetensors",
        "factory": factory,
        "kwargs": kwargs,
        "import_path": import_path,  # where the factory's module is imported from, cached or not
        "params": param_count(model),
    }


def load_torch(folder: Path, meta: dict[str, Any]) -> nn.Module:
    from safetensors.torch import load_file

    model = build(meta["factory"], meta["kwargs"], meta.get("import_path"))
    model.load_state_dict(load_file(str(folder / meta["file"])))
    return model.eval()


def load_weights(model: nn.Module, path: str) -> None:
    """Weights for a python: teacher, from safetensors or a .pt read with weights_only=True."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"teacher.weights {path}: file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        elif p.suffix in (".pt", ".pth", ".bin"):
            state = torch.load(p, map_location="cpu", weights_only=True)  # never unpickle code
        else:
            raise InputFileError(f"teacher.weights {path}: expected .safetensors or .pt")
    except InputFileError:
        raise
    except Exception as err:
        raise InputFileError(
            f"teacher.weights {path}: cannot read ({type(err).__name__}: {err})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise InputFileError(
            f"teacher.weights {path}: do not fit the model ({' '.join(first[:2])})"
        ) from None

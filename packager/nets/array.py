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


class ImageCNN(nn.Module):
    """A fresh image student: conv-BN-ReLU blocks, each halving the resolution (stride 2), then
    global average pooling and a linear head, so its size does not grow with the image."""

    def __init__(self, in_shape: list[int], num_classes: int, channels: list[int], hidden: int):
        super().__init__()
        c = in_shape[0]
        layers: list[nn.Module] = []
        for width in channels:
            layers += [
                nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            c = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def image_cnn(in_shape: list[int], num_classes: int, channels: list[int], hidden: int) -> nn.Module:
    """The `cnn` student for image data (NCHW input)."""
    if len(in_shape) != 3 or in_shape[0] not in (1, 3):
        raise RecipeError(f"distill.student.arch = cnn needs (C, H, W) images, got {in_shape}")
    return ImageCNN(in_shape, num_classes, channels, hidden)


def mlp(in_shape: list[int], num_classes: int, hidden: int, layers: int = 1) -> nn.Module:
    return MLP(in_shape, num_classes, hidden, layers)


def digits_cnn_teacher(
    in_shape: list[int], num_classes: int, channels: list[int] = (32, 64, 128), hidden: int = 256
) -> nn.Module:
    """The builtin teacher: wide enough to be the accurate, slow model a student improves on.
    `teacher.kwargs` can shrink it (the tests do)."""
    return cnn(in_shape, num_classes, channels=list(channels), hidden=hidden)


MOVED = {"packager.nets.arch": "packager.nets.array"}  # factories cached artifacts may still name


def resolve_factory(spec: str, import_path: str | None = None):
    """The callable `MODULE:FUNCTION` names; `import_path` (a folder) is searched first."""
    import sys

    module_name, _, fn_name = spec.partition(":")
    module_name = MOVED.get(module_name, module_name)
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
    shapes: dict[str, Any] | None = None,
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
        "shapes": shapes,  # pruned: the narrowed layers (packager.nets.array.apply_shapes)
    }


def load_torch(folder: Path, meta: dict[str, Any]) -> nn.Module:
    from safetensors.torch import load_file

    model = build(meta["factory"], meta["kwargs"], meta.get("import_path"))
    if meta.get("shapes"):  # a pruned model: the factory's layers narrowed first
        apply_shapes(model, meta["shapes"])
    model.load_state_dict(load_file(str(folder / meta["file"])))
    return model.eval()


_SHAPE_ATTRS = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.BatchNorm2d: ("num_features",),
    nn.Linear: ("in_features", "out_features"),
}


def layer_shapes(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Every conv, batch-norm and linear layer's widths and tensor shapes (JSON): with the
    factory, what rebuilds a pruned model without pickling it."""
    out = {}
    for name, m in model.named_modules():
        attrs = next((a for t, a in _SHAPE_ATTRS.items() if isinstance(m, t)), None)
        if attrs is None:
            continue
        tensors = {
            k: list(v.shape)
            for k, v in [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]
        }
        out[name] = {**{a: getattr(m, a) for a in attrs}, "tensors": tensors}
    return out


def apply_shapes(model: nn.Module, shapes: dict[str, dict[str, Any]]) -> None:
    """Narrow `model`'s layers to recorded `layer_shapes` (values come from load_state_dict)."""
    modules = dict(model.named_modules())
    for name, rec in shapes.items():
        m = modules[name]
        for attr, value in rec.items():
            if attr != "tensors":
                setattr(m, attr, value)
        for tname, shape in rec["tensors"].items():
            old = getattr(m, tname)
            new = torch.zeros(shape, dtype=old.dtype)
            if isinstance(old, nn.Parameter):
                setattr(m, tname, nn.Parameter(new, requires_grad=old.requires_grad))
            else:
                setattr(m, tname, new)


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


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward on `x` (batch 1): every Conv2d and Linear, counted
    by forward hooks (what dominates a CNN; element-wise ops are not counted)."""
    total = 0

    def conv(m: nn.Conv2d, _inp, out) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += int(out[0].numel()) * k

    def linear(m: nn.Linear, _inp, out) -> None:
        nonlocal total
        total += int(out[0].numel()) * m.in_features

    hooks = [
        m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model.eval()(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return total

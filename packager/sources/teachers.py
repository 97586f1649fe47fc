"""Teachers for array data: `builtin:NAME` (trained here, seeded) and `python:MODULE:FACTORY`
(a user's nn.Module factory, weights from safetensors or a weights-only .pt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from packager.config import TeacherConfig
from packager.data import Splits
from packager.errors import RecipeError
from packager.progress import Reporter

BUILTIN = {"digits-cnn": "packager.nets.arch:digits_cnn_teacher"}


@dataclass
class TeacherModel:
    model: nn.Module
    factory: str
    kwargs: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


def _shape_kwargs(splits: Splits) -> dict[str, Any]:
    return {"in_shape": list(splits.preprocessing.sample_shape), "num_classes": splits.num_classes}


def _builtin(cfg: TeacherConfig, splits: Splits, reporter: Reporter) -> TeacherModel:
    from packager.nets.arch import build
    from packager.nets.train import fit

    name = cfg.source.split(":", 1)[1]
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
    )
    info = {
        "trained": True,
        "best_epoch": res.best_epoch,
        "val_accuracy": res.best_val_accuracy,
        "curve": res.curve,
    }
    return TeacherModel(model, BUILTIN[name], kwargs, info)


def _python(cfg: TeacherConfig, splits: Splits) -> TeacherModel:
    from packager.nets.arch import build, load_weights

    _, module, fn = cfg.source.split(":")
    # Factories live in the user's project: modules beside the recipe (or the working
    # directory) are importable, here and in every later step that loads the teacher.
    import_path = str(Path(cfg.import_path or Path.cwd()).resolve())
    factory = f"{module}:{fn}"
    model = build(factory, dict(cfg.kwargs), import_path=import_path)
    if cfg.weights:
        load_weights(model, cfg.weights)
    info = {"trained": False, "weights": cfg.weights, "import_path": import_path}
    return TeacherModel(model.eval(), factory, dict(cfg.kwargs), info)


def make_teacher(cfg: TeacherConfig, splits: Splits, reporter: Reporter) -> TeacherModel:
    if cfg.source.startswith("builtin:"):
        teacher = _builtin(cfg, splits, reporter)
    else:
        teacher = _python(cfg, splits)
    _check_output(teacher.model, splits, cfg.source)
    return teacher


def _check_output(model: nn.Module, splits: Splits, source: str) -> None:
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

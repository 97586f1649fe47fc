"""The single-model commands' plans (`edgepack export`, `quantize`, `bench`, and the host
calibration a bench reads): one model or package file in, a few steps out. The build's plans are
in packager.plans, which exposes these too."""

from __future__ import annotations

import time
from pathlib import Path

from packager.config import (
    BenchConfig,
    CalibrateConfig,
    ExportModelConfig,
    ModelFileConfig,
    OptimizeConfig,
    PackageFileConfig,
    QuantizeConfig,
)
from packager.errors import InputFileError, RecipeError
from packager.stage import Step


def model_step(name: str, path: str | Path) -> Step:
    """The step that brings a user's `.onnx` model or `.edgepack` package into the cache."""
    p = Path(path)
    if p.suffix == ".onnx":
        return Step(name, ModelFileConfig.for_file(p))
    if p.suffix == ".edgepack" or (p.is_dir() and (p / "manifest.json").is_file()):
        return Step(name, PackageFileConfig.for_file(p))
    if not p.exists():
        raise InputFileError(f"{path}: file not found")
    raise InputFileError(f"{path}: expected an .onnx model or an .edgepack package")


def export_plan(cfg: ExportModelConfig) -> list[Step]:
    """`edgepack export`: one step, from the user's source (its files are stamped into the key
    by content) to a checked ONNX model."""
    return [Step("export", cfg)]


def quantize_plan(
    model: str | Path, cfg: QuantizeConfig, optimize: OptimizeConfig | None = None
) -> list[Step]:
    """`edgepack quantize`: model file -> [optimize] -> quantize (data files are stamped into
    the quantize step's key by content, like every path a config names). With no data split
    behind it, a scheme that calibrates needs `calib` and an accuracy budget needs `eval`."""
    from packager.quantize.registry import scheme_of

    if scheme_of(cfg).calibrates and not getattr(cfg, "calib", None):
        raise RecipeError(
            f"quantize.calib is required for mode={cfg.mode} (--calib DATA): point it at a "
            ".npz/.npy/.jsonl/.txt file of a few hundred real inputs, or use mode=dynamic"
        )
    if cfg.max_drop is not None and not cfg.eval:
        raise RecipeError(
            "quantize.max_drop needs evaluation data: set quantize.eval (--eval DATA) to a "
            ".npz/.npy/.jsonl/.txt file"
        )
    steps = [Step("model", ModelFileConfig.for_file(model))]
    roles = {"model": "model"}
    if optimize is not None and optimize.enabled:
        steps.append(Step("optimize", optimize, {"model": "model"}))
        # Every size, the metric and the speed check stay relative to the user's file.
        roles = {"model": "optimize", "original": "model"}
    steps.append(Step("quantize", cfg, roles))
    return steps


def bench_plan(paths: list[str | Path], cfg: BenchConfig) -> list[Step]:
    """`edgepack bench`: each model or package file -> one bench step over all of them."""
    from packager.bench.errors import BenchError
    from packager.bench.targets import check_target_names

    try:
        check_target_names(cfg.targets, cfg.targets_dir)
    except BenchError as err:
        raise RecipeError(f"bench targets: {err}") from None
    steps = [model_step(f"model{i}", p) for i, p in enumerate(paths)]
    # A benchmark is an observation: rerunning the command measures again (a fresh key).
    nonce = str(time.time_ns())
    steps.append(Step("bench", cfg, {s.name: s.name for s in steps}, extra=nonce))
    return calibrated(steps, cfg)


def calibrate_step(*, quick: bool = False) -> Step:
    """The latency model's host calibration, keyed by this host's CPU, ISA and onnxruntime."""
    from packager.bench.latency import describe_host

    h = describe_host()
    cfg = CalibrateConfig(
        cpu=str(h["cpu"]),
        arch=str(h["arch"]),
        onnxruntime=str(h["onnxruntime"]),
        flags=tuple(h["flags"]),
        cores=h.get("usable_cores") or 1,
        quick=quick,
    )
    return Step("calibrate", cfg)


def calibrated(steps: list[Step], bench: BenchConfig) -> list[Step]:
    """`steps` with the host calibration first and the bench step reading it, when a target
    profile gets estimates (the latency model's beside the roofline's); else unchanged."""
    from packager.bench.targets import is_ssh, load_targets

    profiles = load_targets(bench.targets_dir)
    if not any(
        not is_ssh(t) and t in profiles and not profiles[t].host and profiles[t].can_estimate()
        for t in bench.targets
    ):
        return steps
    out = [calibrate_step()]
    for s in steps:
        if s.name == "bench":
            s = Step(s.name, s.config, {**s.roles, "calibration": "calibrate"}, s.extra)
        out.append(s)
    return out

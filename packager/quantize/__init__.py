"""Quantization that users can trust: every onnxruntime scheme, an accuracy budget, a speed check.

    steps = quantize_steps("model.onnx", QuantizeConfig(mode="static", calib="calib.npz"))
    result = pipeline.run(Recipe(name="model"), steps=steps, publish=False)
    result.artifact("quantize").meta["quantization"]   # mode, metric, drop, latency, ...

Modules: data (streamed calibration/evaluation files), modes (one function per mode),
metrics, search (accuracy-aware node exclusion), speed (side-by-side benchmark and causes).
The stages live in packager/stages/quantize.py and packager/stages/optimize.py.
"""

from __future__ import annotations

from pathlib import Path

from packager.recipe import OptimizeConfig, QuantizeConfig

__all__ = ["quantize_steps"]


def quantize_steps(model: str | Path, cfg: QuantizeConfig, optimize: OptimizeConfig | None = None):
    """The single-stage recipe of `edgepack quantize`: model file -> [optimize] -> quantize.

    Data files are hashed into the quantize step's key, so an edited file is a new key.
    """
    from packager.pipeline import Step
    from packager.quantize.data import data_files_digest
    from packager.stages.source import ModelFileConfig

    steps = [Step("model", ModelFileConfig.for_file(model))]
    upstream = "model"
    if optimize is not None and optimize.enabled:
        steps.append(Step("optimize", optimize, ("model",)))
        upstream = "optimize"
    steps.append(Step("quantize", cfg, (upstream,), extra=data_files_digest(cfg)))
    return steps

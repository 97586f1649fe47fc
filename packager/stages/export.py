"""export: torch -> ONNX with a dynamic batch axis, checked against torch on the test split."""

from __future__ import annotations

import warnings

import numpy as np

from packager.errors import CheckFailed, StageError
from packager.recipe import ExportConfig
from packager.stage import Artifact, Output, StageContext, register_stage
from packager.stages.data import splits_of

INPUT, OUTPUT = "input", "logits"


def export_module(model, example, path, cfg: ExportConfig) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter; failures still raise
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=cfg.dynamo,  # explicit: torch 2.13 defaults to the dynamo exporter
            opset_version=cfg.opset,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            external_data=False,
        )


@register_stage(ExportConfig)
def export(model_art: Artifact, cfg: ExportConfig, ctx: StageContext) -> Output:
    if model_art.kind == "hf":  # a transformers folder (packager/stages/text_export.py)
        from packager.stages.text_export import export_text

        return export_text(model_art, cfg, ctx)
    import torch

    from packager.distill.arch import load_torch
    from packager.onnx_utils import io_spec, run_batched, session

    splits = splits_of(ctx.inputs["data"])
    model = load_torch(model_art.path, model_art.meta)
    x_test = splits.model_input("test")
    out = ctx.workdir / "model.onnx"
    try:
        export_module(model, torch.from_numpy(x_test[:2]), out, cfg)
    except Exception as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StageError(ctx.step, f"torch.onnx.export(dynamo={cfg.dynamo}) failed: {msg}") from err
    with torch.no_grad():
        ref = model(torch.from_numpy(x_test)).numpy()
    got = run_batched(session(out), x_test)
    diff = float(np.max(np.abs(got - ref)))
    if not diff <= cfg.atol:
        raise CheckFailed(
            ctx.step,
            f"max |onnx - torch| = {diff:.3g} on {len(x_test)} test examples exceeds export.atol = {cfg.atol:g}",
        )
    ctx.log(
        f"opset {cfg.opset}, dynamo={cfg.dynamo}; parity max abs diff {diff:.2e} <= {cfg.atol:g}"
    )
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "precision": "fp32",
            "size_bytes": out.stat().st_size,
            "params": model_art.meta["params"],
            "parity_max_abs_diff": diff,
            "parity_examples": len(x_test),
            **io_spec(out),
        },
    )

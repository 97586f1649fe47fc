"""Export an array model (an nn.Module taking one tensor) with a dynamic batch axis, and check it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

INPUT, OUTPUT = "input", "logits"


def export_module(model, example, path: Path, *, opset: int, dynamo: bool) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter; failures still raise
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=dynamo,  # explicit: torch 2.13 defaults to the dynamo exporter
            opset_version=opset,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            external_data=False,
        )


def parity(model, path: Path, x: np.ndarray) -> float:
    """Max |onnx - torch| on `x`, run batched in onnxruntime."""
    import torch

    from packager.onnx_utils import run_batched, session

    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = run_batched(session(path), x)
    return float(np.max(np.abs(got - ref)))

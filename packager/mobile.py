"""ONNX Runtime Mobile artifacts for the package stage (package.mobile = true).

- `model.ort`: the model in ORT format (onnxruntime.tools.convert_onnx_models_to_ort), which the
  minimal onnxruntime builds for phones and microcontroller-class Linux load without protobuf;
- `required_operators.config`: the operators it uses, the input of onnxruntime's
  reduced-operator build (`build.sh --include_ops_by_config`);
- the mobile usability check (onnxruntime.tools.mobile_helpers.usability_checker): how much of
  the graph NNAPI and CoreML could take, recorded in the manifest;
- optionally, inputs made fixed-shape first (onnxruntime.tools.onnx_model_utils), because NNAPI
  and CoreML only take nodes whose shapes are known. model.onnx keeps its dynamic shapes.

The .ort must reproduce the recorded sample outputs within the package's tolerance, or the
stage fails: a mobile model that silently disagrees with the tested one is worse than none.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from packager.errors import CheckFailed, StageError

ORT_MODEL = "model.ort"
OPERATORS_CONFIG = "required_operators.config"
# Phones and boards are ARM: lets the converter keep int8 QDQ as int8 kernels (QLinearConv...),
# which ARM runs fast; the .ort still runs anywhere, and is checked here on the host.
TARGET_PLATFORM = "arm"
_EPS = {
    "NNAPI": None,
    "CoreML NeuralNetwork": "coreml_supported_neuralnetwork_ops.md",
    "CoreML MLProgram": "coreml_supported_mlprogram_ops.md",
}


def write_mobile_artifacts(
    model: Path, tree: Path, samples: Mapping[str, Any], fix_shapes: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Write model.ort and required_operators.config into `tree`; return the manifest block.

    `samples` is the manifest's samples block (files already in `tree`), used for the parity
    check. Raises StageError for a bad fix_shapes, CheckFailed if the .ort disagrees.
    """
    import onnxruntime as ort

    work = tree.parent / "mobile-work"
    work.mkdir()
    try:
        source = work / "model.onnx"
        _write_fixed(model, source, fix_shapes or {})
        _convert(source, work / "out")
        shutil.copyfile(work / "out" / ORT_MODEL, tree / ORT_MODEL)
        config = (work / "out" / f"model.{OPERATORS_CONFIG}").read_text().splitlines()
        # The converter names its temporary output path in a comment: keep builds reproducible.
        config = [f"# - {ORT_MODEL}" if ln.startswith("# - ") else ln for ln in config]
        (tree / OPERATORS_CONFIG).write_text("\n".join(config) + "\n")
        usability = usability_check(source, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _check_parity(tree, samples)
    return {
        "model": ORT_MODEL,
        "required_operators": OPERATORS_CONFIG,
        "onnxruntime": ort.__version__,
        "target_platform": TARGET_PLATFORM,
        "fixed_shapes": {k: list(v) for k, v in fix_shapes.items()} if fix_shapes else None,
        "usability": usability,
    }


def _write_fixed(model: Path, dest: Path, fix_shapes: Mapping[str, Any]) -> None:
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    if not fix_shapes:
        shutil.copyfile(model, dest)
        return
    proto = onnx.load(str(model))
    names = [i.name for i in proto.graph.input]
    for name, shape in fix_shapes.items():
        if name not in names:
            raise StageError(
                "package", f"fix_shapes: {name!r} is not a model input (inputs: {names})"
            )
        try:
            make_input_shape_fixed(proto.graph, name, list(shape))
        except ValueError as err:  # rank mismatch, or a fixed dim given another size
            raise StageError("package", f"fix_shapes.{name} = {list(shape)}: {err}") from None
    fix_output_shapes(proto)
    onnx.save(proto, str(dest))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The converter prints progress to stdout and logs at INFO: keep the build output clean."""
    logger = logging.getLogger("ort_format_model.utils")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _convert(model: Path, out: Path) -> None:
    from onnxruntime.tools.convert_onnx_models_to_ort import (
        OptimizationStyle,
        convert_onnx_models_to_ort,
    )

    # Fixed style: optimizations are baked into the .ort, so a minimal build needs no optimizer.
    with _quiet():
        convert_onnx_models_to_ort(
            model,
            output_dir=out,
            optimization_styles=[OptimizationStyle.Fixed],
            target_platform=TARGET_PLATFORM,
        )


def usability_check(model: Path, work: Path) -> dict[str, dict[str, Any]]:
    """Per mobile EP: YES/MAYBE/NO, node coverage, partitions, unsupported ops.

    The same steps as onnxruntime's `usability_checker.analyze_model` (optimize to BASIC, infer
    shapes, partition per EP), kept as numbers instead of log lines so the manifest can hold them.
    """
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    optimized = work / "basic.onnx"
    optimize_model(model, optimized, use_external_initializers=True)
    graph_model = ModelProtoWithShapeInfo(optimized).model_with_shape_info
    dynamic_inputs, _ = uc.check_shapes(graph_model.graph)
    out: dict[str, dict[str, Any]] = {}
    for ep, ops_file in _EPS.items():

        def partition(fixed: bool, ops_file: str | None = ops_file):
            if ops_file is None:
                return uc.check_nnapi_partitions(graph_model, require_fixed_input_sizes=fixed)
            return uc.check_coreml_partitions(graph_model, fixed, ops_file)

        info = partition(True)
        entry = {
            "suitability": info.suitability().name,
            "nodes": info.num_nodes,
            "supported_nodes": info.num_supported_nodes,
            "partitions": info.num_partitions,
            "unsupported_ops": sorted(info.unsupported_ops),
        }
        if dynamic_inputs:
            entry["with_fixed_shapes"] = partition(False).suitability().name
        out[ep] = entry
    return out


def _check_parity(tree: Path, samples: Mapping[str, Any]) -> None:
    """model.ort on the recorded sample inputs must give the recorded outputs (atol/rtol)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.load_model_format", "ORT")
    session = ort.InferenceSession(
        str(tree / ORT_MODEL), options, providers=["CPUExecutionProvider"]
    )
    feeds = {n: np.load(tree / p) for n, p in samples["inputs"].items()}
    rows = len(next(iter(feeds.values())))
    batch = session.get_inputs()[0].shape[0]
    step = batch if isinstance(batch, int) and batch > 0 and rows % batch == 0 else rows
    names = [o.name for o in session.get_outputs()]
    parts = [
        session.run(None, {k: v[i : i + step] for k, v in feeds.items()})
        for i in range(0, rows, step)
    ]
    atol, rtol = samples["atol"], samples["rtol"]
    for j, name in enumerate(names):
        got = np.concatenate([p[j] for p in parts])
        want = np.load(tree / samples["outputs"][name])
        if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=rtol):
            diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
            raise CheckFailed(
                "package",
                f"{ORT_MODEL} output {name!r} differs from model.onnx on the samples: "
                f"max abs diff {diff:.3g} > atol {atol:g} (rtol {rtol:g})",
            )

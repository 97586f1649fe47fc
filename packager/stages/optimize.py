"""optimize: onnxslim and onnxruntime's offline graph optimization, saved to file.

onnxslim runs first (constant folding, dead nodes, shape-level simplification: portable ONNX),
then onnxruntime at the chosen level. basic keeps standard ONNX ops; extended and all write
onnxruntime-only fused ops (all also CPU-specific layouts), so those files need onnxruntime on
this kind of CPU. Node counts are recorded after each step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from packager.errors import StageError
from packager.recipe import OptimizeConfig
from packager.stage import Artifact, Output, StageContext, register_stage

LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


def slim(src: Path, dst: Path) -> None:
    import onnx
    import onnxslim

    # Given a model and no output path, onnxslim returns the result instead of printing its
    # summary table (with our temporary paths) to stdout; saving it is ours to do.
    model = onnxslim.slim(onnx.load(str(src)))
    if model is None:
        raise ValueError("onnxslim returned no model")
    big = model.ByteSize() >= onnx.checker.MAXIMUM_PROTOBUF
    onnx.save(model, str(dst), save_as_external_data=big, location=f"{dst.name}.data")


def ort_optimize(src: Path, dst: Path, level: str) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])


@register_stage(OptimizeConfig)
def optimize(model_art: Artifact, cfg: OptimizeConfig, ctx: StageContext) -> Output:
    from packager.onnx_utils import io_spec, summary

    current = ctx.workdir / "model.onnx"
    shutil.copyfile(model_art.file(), current)
    before = node_count(current)
    steps = [{"step": "input", "nodes": before, "size_bytes": current.stat().st_size}]
    plan = (["onnxslim"] if cfg.slim else []) + (
        [f"onnxruntime-{cfg.level}"] if cfg.level != "none" else []
    )
    for name in plan:
        nxt = ctx.workdir / "next.onnx"
        try:
            if name == "onnxslim":
                slim(current, nxt)
            else:
                ort_optimize(current, nxt, cfg.level)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StageError(ctx.step, f"{name} failed: {first}") from err
        nxt.replace(current)
        steps.append(
            {"step": name, "nodes": node_count(current), "size_bytes": current.stat().st_size}
        )
    after = steps[-1]["nodes"]
    ctx.log(f"{' + '.join(plan) or 'nothing'}: {before} -> {after} nodes")
    info = summary(current)
    return Output(
        "onnx",
        {
            "file": "model.onnx",
            "level": cfg.level,
            "slim": cfg.slim,
            "nodes_before": before,
            "nodes_after": after,
            "steps": steps,
            "ops": info["ops"],
            "size_bytes": current.stat().st_size,
            "params": model_art.meta.get("params"),
            **io_spec(current),
        },
    )

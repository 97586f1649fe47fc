"""optimize: onnxslim, then onnxruntime's offline graph optimization at the chosen level, saved
to file (packager.export.passes). Node counts and sizes are recorded after each pass.
"""

from __future__ import annotations

import shutil

from packager.artifact import Artifact, Output
from packager.config import OptimizeConfig
from packager.errors import StageError, one_line
from packager.stage import StageContext, register_stage


@register_stage(OptimizeConfig, version=2)
def optimize(model_art: Artifact, cfg: OptimizeConfig, ctx: StageContext) -> Output:
    from packager.export.passes import node_count, ort_optimize, slim
    from packager.onnx_utils import io_spec, summary
    from packager.provenance.onnx_meta import carry

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
            raise StageError(ctx.step, f"{name} failed: {one_line(err)}") from err
        nxt.replace(current)
        steps.append(
            {"step": name, "nodes": node_count(current), "size_bytes": current.stat().st_size}
        )
    carry(model_art.file(), current)  # passes that rewrite the graph may drop metadata_props
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

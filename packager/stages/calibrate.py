"""calibrate: this host's per-op-class costs for the latency model (packager.bench.latency):
microbenchmarks of fp32 / int8 / int4 GEMMs and convolutions and of memory-bound ops, timed in
onnxruntime with one thread and fitted per class. Keyed by the host's identity (CPU, ISA,
onnxruntime), so a search on one machine reuses it and another machine measures its own."""

from __future__ import annotations

import json
import math

from packager.artifact import Artifact, Output
from packager.config import CalibrateConfig
from packager.stage import StageContext, register_stage


@register_stage(CalibrateConfig, version=1)
def calibrate(_none: Artifact | None, cfg: CalibrateConfig, ctx: StageContext) -> Output:
    from packager.bench import latency, microbench

    measured = microbench.measure(quick=cfg.quick, progress=lambda cls: ctx.log(f"{cls} timed"))
    record = latency.fit(measured, latency.describe_host())
    (ctx.workdir / "calibration.json").write_text(json.dumps(record, indent=2))
    worst = max(c["fit_error"] for c in record["classes"].values())
    ctx.log(
        f"session {record['session_us']:.1f} us; {len(record['classes'])} op classes, worst fit "
        f"error x{math.exp(worst):.2f}, timing noise x{record['noise']:.2f}"
    )
    return Output("calibration", {"file": "calibration.json", "version": record["version"]})

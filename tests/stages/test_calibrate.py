"""calibrate: this host's microbenchmarks, fitted per op class, cached per host."""

from __future__ import annotations

import json

from packager import pipeline
from packager.plans import calibrate_step
from packager.progress import SilentReporter


def test_calibrate_fits_every_op_class_and_is_cached_per_host(cache_dir):
    step = calibrate_step()
    first = pipeline.run([step], cache_dir=cache_dir, reporter=SilentReporter())
    cal = json.loads(first.artifact("calibrate").file().read_text())
    assert set(cal["classes"]) >= {"gemm_fp32", "conv_fp32", "gemm_int8", "conv_int8", "memory"}
    for c in cal["classes"].values():
        assert c["rate"] > 0 and c["t0_us"] >= 0
    assert cal["session_us"] > 0 and cal["peaks"]["clock_ghz"] > 0
    again = pipeline.run([calibrate_step()], cache_dir=cache_dir, reporter=SilentReporter())
    assert again.ran == []  # the same host: the calibration is reused
    assert step.config.cpu and step.config.onnxruntime

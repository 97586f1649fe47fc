"""Quantization that users can trust: every onnxruntime scheme, an accuracy budget, a speed check.

    steps = plans.quantize_plan("model.onnx", QuantizeConfig(mode="static", calib="calib.npz"))
    result = pipeline.run(steps)
    result.artifact("quantize").meta["quantization"]   # mode, metric, drop, latency, ...

Modules: data (streamed calibration/evaluation files), modes (one function per mode),
metrics, search (accuracy-aware node exclusion), speed (side-by-side benchmark and causes).
The stage lives in packager/stages/quantize.py.
"""

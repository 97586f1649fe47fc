"""Quantization that users can trust: every onnxruntime scheme, an accuracy budget, a speed check.

    cfg = packager.quantize.schemes.quantize_config(mode="static", calib="calib.npz")
    result = pipeline.run(plans.quantize_plan("model.onnx", cfg))
    result.artifact("quantize").meta["quantization"]   # mode, metric, drop, latency, ...

Modules: registry (the schemes, declared once) and schemes/ (one file per scheme), quantizer
(one prepared graph, quantized as often as the search asks), apply (one quantization whole:
trials, search, checks), data (streamed calibration/evaluation files), metrics, search
(accuracy-aware node exclusion), speed (side-by-side benchmark and causes). The stage lives in
packager/stages/quantize.py.
"""

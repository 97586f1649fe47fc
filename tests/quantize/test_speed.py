"""Speed check: the likely cause is named when a quantized model is not faster."""

from __future__ import annotations

from collections import Counter

from packager.quantize.schemes import quantize_config
from packager.quantize.speed import cpu_features, slow_causes


def test_cpu_probe_names_int8_dot_product_features():
    x86 = cpu_features(["avx2", "avx512f", "avx512_vnni"])
    assert x86["avx512"] and x86["vnni"] and x86["int8_dot_product"] and not x86["amx"]
    arm = cpu_features(["neon", "asimd", "asimddp"])
    assert arm["neon"] and arm["dotprod"] and arm["int8_dot_product"]
    old = cpu_features(["avx2"])
    assert old["avx2"] and not old["int8_dot_product"]
    assert set(cpu_features()) >= {
        "arch",
        "isa",
        "avx2",
        "avx512",
        "vnni",
        "amx",
        "neon",
        "dotprod",
    }


def test_causes_name_vnni_fake_quant_and_dynamic_convolutions():
    no_vnni = cpu_features(["avx2"])
    causes = slow_causes(quantize_config(mode="dynamic"), Counter({"ConvInteger": 2}), no_vnni, 1.0)
    assert causes[0].startswith("dynamic quantization of convolutions: 2 ConvInteger")
    assert any(c.startswith("no VNNI") for c in causes)
    causes = slow_causes(
        quantize_config(mode="static"),
        Counter({"QuantizeLinear": 3, "DequantizeLinear": 4}),
        no_vnni,
        1.0,
    )
    assert causes[0].startswith("QDQ kept as fake-quant: 7")
    vnni = cpu_features(["avx2", "avx512_vnni"])
    assert slow_causes(quantize_config(), Counter({"QLinearConv": 1}), vnni, 1.0) == []
    assert any("tiny" in c for c in slow_causes(quantize_config(), Counter(), vnni, 0.01))
    assert "fp16" in slow_causes(quantize_config(mode="fp16"), Counter(), vnni, 1.0)[0]


def test_the_final_check_times_fp32_and_quantized_back_to_back(
    outlier, tmp_path, run_quantize, monkeypatch
):
    from packager.quantize import speed

    timed = []

    def fake_latency(model, threads, runs, feeds):
        timed.append((str(model), threads))
        return float(len(timed))  # call k measures k ms: tells which call a figure came from

    monkeypatch.setattr(speed, "latency", fake_latency)
    monkeypatch.setattr(speed, "ops_after_ort", lambda model: Counter())
    art = run_quantize(
        outlier["model"],
        tmp_path,
        mode="static",
        calib=str(outlier["calib"]),
        eval=str(outlier["eval"]),
        max_drop=0.05,
        speed_threads=2,
    )
    s = art.meta["quantization"]["speed"]
    trials = art.meta["quantization"]["trials"]
    assert len(timed) == trials + 2  # each search trial, then the two side by side
    fp32, quantized = timed[-2:]
    assert "/import_model/" in fp32[0]  # the input artifact, then the model the stage wrote
    assert "/quantize/" in quantized[0] and "/work/" not in quantized[0]
    assert quantized[0].endswith("model.onnx")
    assert fp32[1] == quantized[1] == 2
    assert (s["fp32_p50_ms"], s["p50_ms"]) == (trials + 1.0, trials + 2.0)

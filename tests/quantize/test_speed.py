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
    # each search trial, then the two side by side; judged slower, twice more, alternating
    assert len(timed) == trials + 6
    assert [m.rsplit("/", 3)[-3] for m, _ in timed[-6:]] == ["import_model", "quantize"] * 3
    fp32, quantized = timed[-2:]
    assert "/import_model/" in fp32[0]  # the input artifact, then the model the stage wrote
    assert "/quantize/" in quantized[0] and "/work/" not in quantized[0]
    assert quantized[0].endswith("model.onnx")
    assert fp32[1] == quantized[1] == 2
    assert (s["fp32_p50_ms"], s["p50_ms"]) == (trials + 3.0, trials + 4.0)  # round medians


def test_a_load_spike_in_one_round_does_not_make_the_verdict(monkeypatch, tmp_path):
    from packager.quantize import speed

    times = iter([10.0, 45.0, 10.0, 6.0, 11.0, 6.5])  # the quantized model's first runs hit a spike

    monkeypatch.setattr(speed, "latency", lambda model, threads, runs, feeds: next(times))
    assert speed._p50s(tmp_path / "a", tmp_path / "b", 1, 5, None) == (10.0, 6.5)
    faster = iter([10.0, 5.0])  # faster at once: measured once
    monkeypatch.setattr(speed, "latency", lambda model, threads, runs, feeds: next(faster))
    assert speed._p50s(tmp_path / "a", tmp_path / "b", 1, 5, None) == (10.0, 5.0)

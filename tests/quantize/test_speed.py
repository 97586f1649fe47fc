"""Speed check: the likely cause is named when a quantized model is not faster."""

from __future__ import annotations

from collections import Counter

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
    causes = slow_causes("dynamic", Counter({"ConvInteger": 2}), no_vnni, 1.0)
    assert causes[0].startswith("dynamic quantization of convolutions: 2 ConvInteger")
    assert any(c.startswith("no VNNI") for c in causes)
    causes = slow_causes(
        "static", Counter({"QuantizeLinear": 3, "DequantizeLinear": 4}), no_vnni, 1.0
    )
    assert causes[0].startswith("QDQ kept as fake-quant: 7")
    vnni = cpu_features(["avx2", "avx512_vnni"])
    assert slow_causes("static", Counter({"QLinearConv": 1}), vnni, 1.0) == []
    assert any("tiny" in c for c in slow_causes("static", Counter(), vnni, 0.01))
    assert "fp16" in slow_causes("fp16", Counter(), vnni, 1.0)[0]

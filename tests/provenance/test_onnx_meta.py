"""The lineage in metadata_props: written on the shipped model, kept through quantize (every
mode), optimize (onnxslim + onnxruntime) and the mobile (.ort) conversion."""

from __future__ import annotations

import zipfile

import numpy as np
import onnx
import pytest

from packager.provenance import onnx_meta

PROPS = {"edgepack.teacher": "hf:some/teacher", "edgepack.license": "apache-2.0"}


@pytest.fixture(scope="module")
def stamped(tmp_path_factory):
    from tiny_models import outlier_mlp_onnx

    root = tmp_path_factory.mktemp("meta")
    model = outlier_mlp_onnx(root / "m.onnx")
    onnx_meta.write(model, PROPS)
    np.save(root / "calib.npy", np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32))
    return model, root / "calib.npy"


@pytest.mark.parametrize("mode", ["dynamic", "static", "fp16", "int4"])
def test_metadata_survives_optimize_then_quantize_in_every_mode(stamped, tmp_path, mode):
    from packager.config import OptimizeConfig
    from packager.pipeline import run
    from packager.plans import quantize_plan
    from packager.progress import SilentReporter

    model, calib = stamped
    from packager.quantize.schemes import quantize_config

    cfg = quantize_config(mode=mode, **({"calib": str(calib)} if mode == "static" else {}))
    steps = quantize_plan(model, cfg, OptimizeConfig(slim=True, level="extended"))
    result = run(steps, cache_dir=tmp_path, reporter=SilentReporter())
    for step in ("optimize", "quantize"):
        got = onnx_meta.read(result.artifact(step).file())
        assert PROPS.items() <= got.items(), (step, got)


def test_carry_reapplies_what_a_pass_dropped(stamped, tmp_path):
    model, _ = stamped
    bare = onnx.load(str(model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    assert sorted(onnx_meta.carry(model, tmp_path / "bare.onnx")) == sorted(PROPS)
    assert onnx_meta.read(tmp_path / "bare.onnx") == PROPS
    assert onnx_meta.carry(model, tmp_path / "bare.onnx") == []  # nothing missing: untouched


def _package_props(build) -> dict[str, dict[str, str]]:
    import onnxruntime as ort

    out = {}
    with zipfile.ZipFile(build.package_path) as zf:
        for name in zf.namelist():
            if name.endswith((".onnx", ".ort")):
                options = ort.SessionOptions()
                if name.endswith(".ort"):
                    options.add_session_config_entry("session.load_model_format", "ORT")
                sess = ort.InferenceSession(
                    zf.read(name), options, providers=["CPUExecutionProvider"]
                )
                out[name] = sess.get_modelmeta().custom_metadata_map
    return out


@pytest.mark.slow
def test_a_built_and_quantized_package_model_carries_its_lineage(tiny_build):
    props = _package_props(tiny_build)["model.onnx"]
    assert props["edgepack.producer"].startswith("edgepack ")
    assert props["edgepack.package"] == "digits-tiny" and props["edgepack.package_version"]
    assert props["edgepack.teacher"] == "builtin:digits-cnn"
    assert props["edgepack.teacher_id"] == tiny_build.artifact("teacher").id
    assert props["edgepack.terms"] == "edgepack-builtin" and "edgepack.license" in props
    assert '"quantized":"static"' in props["edgepack.lineage"]


@pytest.mark.slow
def test_the_mobile_conversion_keeps_the_lineage_in_model_ort(tiny_mobile_build):
    props = _package_props(tiny_mobile_build)
    assert set(props) == {"model.onnx", "model.ort"}
    assert props["model.ort"] == props["model.onnx"] and "edgepack.teacher" in props["model.ort"]

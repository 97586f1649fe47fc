"""Models users bring (issue 12): old opsets, dynamic spatial dims, maps and per-timestep
outputs, integer inputs; each test failed on main before the fix it names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from cli_helpers import edgepack, one_error_line
from click.testing import CliRunner

from packager.cli import cli
from packager.onnx_utils import session


def _quantize(model, out: Path, *args):
    argv = ["quantize", str(model), "-o", str(out), *map(str, args)]
    argv += ["--cache-dir", str(out.parent / "cache")]
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def _report(out: Path) -> dict:
    return json.loads(out.with_name(out.name.removesuffix(".onnx") + ".quantize.json").read_text())


def test_opset_11_static_per_channel_is_upgraded_checked_and_loads(user_models, tmp_path):
    # main: onnxruntime could not load the output (DequantizeLinear has no axis at opset 11).
    out = tmp_path / "det.int8.onnx"
    res = _quantize(
        user_models["detector"], out, "--mode", "static", "--calib", user_models["det_data"],
        "--no-speed-check",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "opset 11 -> 13 (onnx version converter, max |diff| vs the original" in res.output
    up = _report(out)["opset_upgrade"]
    assert (up["from"], up["to"], up["checked"]) == (11, 13, True) and up["max_abs_diff"] < 1e-5
    model = onnx.load(str(out))
    assert next(o.version for o in model.opset_import if o.domain == "") == 13
    x = np.load(user_models["det_data"])["x"][:2]
    assert session(out).run(None, {"x": x})[0].shape == (2, 1, 64, 64)


def test_the_speed_check_times_the_calibration_datas_shape(user_models, tmp_path):
    # main: every non-batch symbolic dim was bound to 1 (a 1x1 image here cannot even run).
    out = tmp_path / "det.int8.onnx"
    res = _quantize(
        user_models["detector"], out, "--mode", "static", "--calib", user_models["det_data"],
        "--threads", "1",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    speed = _report(out)["speed"]
    assert speed["inputs"] == {"x": [1, 3, 64, 64]}
    assert speed["input_source"] == "calibration data" and speed["guessed_dims"] == {}
    assert "on calibration data x [1, 3, 64, 64]" in res.output


def test_without_data_a_speed_check_that_cannot_run_keeps_the_model_and_names_the_guess(
    user_models, tmp_path
):
    # main: the speed check failed in onnxruntime and the finished quantization was lost (exit 1).
    out = tmp_path / "det.dyn.onnx"
    proc = edgepack(
        "quantize", user_models["detector"], "-o", out, "--mode", "dynamic",
        "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and _report(out)["speed"] is None
    assert "speed check failed, the quantized model is kept" in proc.stderr
    assert "symbolic dims guessed (height=1, width=1)" in " ".join(proc.stderr.split())
    ok = tmp_path / "det.dyn64.onnx"
    res = _quantize(user_models["detector"], ok, "--mode", "dynamic", "--dim", "height=64",
                    "--dim", "width=64")  # fmt: skip
    # the check now runs, finds dynamic slower than fp32 and names the scheme that is not (#29)
    assert res.exit_code == 4, res.output
    assert "but static runs faster" in res.output and "--mode static --calib DATA" in res.output
    assert _report(ok)["speed"]["inputs"] == {"x": [1, 3, 64, 64]}


def test_integer_inputs_are_never_zero_filled_feeds_are_used_instead(user_models, tmp_path):
    # main: `lengths` was fed zeros without a word, and quantize had no way to take real feeds.
    out = tmp_path / "len.onnx"
    proc = edgepack(
        "quantize", user_models["lengths"], "-o", out, "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "speed check skipped" in proc.stderr and "lengths (int64)" in proc.stderr
    fed = tmp_path / "len.fed.onnx"
    res = _quantize(user_models["lengths"], fed, "--feeds", user_models["lengths_feeds"])
    assert res.exit_code == 0, res.output
    speed = _report(fed)["speed"]
    assert speed["inputs"] == {"features": [1, 10, 8], "lengths": [1]}
    assert speed["input_source"].startswith("feeds ")


def test_fp16_output_passes_the_checker_and_edgepack_bench_accepts_it(user_models, tmp_path):
    # main: nodes were not topologically sorted, so onnx.checker and `bench --compare` refused it.
    out = tmp_path / "det.fp16.onnx"
    res = _quantize(user_models["detector"], out, "--mode", "fp16", "--no-speed-check")
    assert res.exit_code == 0, res.output
    onnx.checker.check_model(onnx.load(str(out)))
    x = np.load(user_models["det_data"])["x"][:1]
    ref = session(user_models["detector"]).run(None, {"x": x})[0]
    assert np.abs(session(out).run(None, {"x": x})[0] - ref).max() < 1e-2
    bench = CliRunner().invoke(
        cli,
        ["bench", str(user_models["detector"]), "--compare", str(out), "--dim", "height=64",
         "--dim", "width=64", "--runs", "3", "--warmup", "0", "--cache-dir", str(tmp_path / "c")],
        catch_exceptions=False,
    )  # fmt: skip
    assert bench.exit_code == 0, bench.output
    assert "det.fp16.onnx" in bench.output


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_the_calibration_method_recorded_is_the_one_applied(
    user_models, tmp_path, run_quantize, method
):
    # main: entropy produced minmax's bytes (onnxruntime's default 128 bins = 128 quantized bins)
    # while the report said "entropy".
    common = {"mode": "static", "calib": str(user_models["rec_data"]), "speed_check": False}
    minmax = run_quantize(user_models["recognizer"], tmp_path, calibration="minmax", **common)
    other = run_quantize(user_models["recognizer"], tmp_path, calibration=method, **common)
    assert other.file().read_bytes() != minmax.file().read_bytes()
    q = other.meta["quantization"]
    assert q["calibration"] == method == other.meta["calibration"]
    assert q["calibration_options"]["num_bins"] == 2048


def test_map_outputs_are_scored_by_iou_and_agreement_over_no_class_axis_is_refused(
    user_models, tmp_path
):
    # main: agreement was the argmax of the flattened map, 0.0 for a detector at IoU 0.96.
    data = user_models["det_data"]
    out = tmp_path / "det.onnx"
    res = _quantize(
        user_models["detector"], out, "--mode", "static", "--calib", data, "--eval", data,
        "--metric", "iou", "--max-drop", "0.2", "--no-speed-check",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = _report(out)["metric"]
    assert m["name"] == "iou" and m["fp32"] == 1.0 and m["quantized"] > 0.8
    assert (tmp_path / "det.search.md").read_text().startswith("# accuracy search on iou")
    proc = edgepack(
        "quantize", user_models["detector"], "-o", tmp_path / "x.onnx", "--mode", "dynamic",
        "--eval", data, "--metric", "agreement", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    line = one_error_line(proc)
    assert "metric agreement needs at least 2 classes" in line and "[24, 1, 64, 64]" in line
    assert "use iou, cosine or mse" in line


def test_per_timestep_outputs_are_scored_by_sequence_agreement(user_models, tmp_path):
    out = tmp_path / "rec.onnx"
    data = user_models["rec_data"]
    res = _quantize(
        user_models["recognizer"], out, "--mode", "dynamic", "--eval", data,
        "--metric", "sequence", "--no-speed-check",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = _report(out)["metric"]
    assert m["name"] == "sequence" and m["fp32"] == 1.0 and 0.0 <= m["quantized"] <= 1.0
    assert "sequence: fp32 1.0000" in res.output


def test_slim_sizes_are_relative_to_the_users_file(transformer, tmp_path):
    # main: "x% of fp32" divided by the slimmed intermediate's size.
    out = tmp_path / "t.onnx"
    res = _quantize(transformer["model"], out, "--slim", "--no-speed-check")
    assert res.exit_code == 0, res.output
    q = _report(out)
    given = Path(transformer["model"]).stat().st_size
    assert q["fp32_size_bytes"] == given and q["optimized_size_bytes"] != given
    assert f"{given / 1024:.1f} KiB (the input)" in res.output
    assert f"({out.stat().st_size / given:.0%} of the input)" in res.output


def test_an_output_onnxruntime_cannot_load_is_an_error_naming_no_cache_path(
    outlier, tmp_path, monkeypatch
):
    from dataclasses import replace

    from packager.quantize.schemes import SCHEMES

    def broken(self, dst, exclude):
        model = onnx.load(str(self.graph))
        model.graph.node[0].op_type = "NoSuchOp"
        onnx.save(model, str(dst))

    monkeypatch.setitem(SCHEMES, "dynamic", replace(SCHEMES["dynamic"], quantize=broken))
    res = CliRunner().invoke(
        cli,
        ["quantize", str(outlier["model"]), "-o", str(tmp_path / "o.onnx"), "--no-speed-check",
         "--cache-dir", str(tmp_path / "cache")],
    )  # fmt: skip
    assert res.exit_code == 3 and not (tmp_path / "o.onnx").exists()
    assert "does not load in onnxruntime" in res.output
    assert ".tmp-" not in res.output and str(tmp_path / "cache") not in res.output

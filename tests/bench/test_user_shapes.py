"""Shapes are explicit everywhere (issue 12): `--dim` on bench and inspect, `--feeds` for bare
models, guessed dims said out loud, integer inputs refused by name instead of zero-filled."""

from __future__ import annotations

import json

import numpy as np
from cli_helpers import edgepack, one_error_line

from packager.bench.costmodel import analyze


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at the console width


def _detector_macs(h: int, w: int) -> int:
    """TinyDetector by hand: c1 (3->8, s2), c2 (8->16, s2), fuse (24->8), head (8->1, 1x1)."""
    return (
        8 * (h // 2) * (w // 2) * 27
        + 16 * (h // 4) * (w // 4) * 72
        + 8 * (h // 2) * (w // 2) * 216
        + h * w * 8
    )


def test_inspect_binds_dims_given_and_says_which_it_guessed(user_models):
    # main: inspect had no --dim and costed every symbolic dim as 1 (silently).
    proc = edgepack("inspect", user_models["detector"], "--json", "--dim", "height=320",
                    "--dim", "width=320")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cost = json.loads(proc.stdout)["cost"]
    assert cost["macs"] == _detector_macs(320, 320) and cost["guessed_dims"] == {}
    assert cost["inputs"] == {"x": [1, 3, 320, 320]}
    shown = edgepack("inspect", user_models["detector"])
    assert "guessed symbolic dims: height=1, width=1" in shown.stdout


def test_bench_names_guessed_dims_and_a_model_that_cannot_run_on_them(user_models, tmp_path):
    # main: bench ran the recognizer on a 1-pixel-wide line without a word.
    rec = edgepack("bench", user_models["recognizer"], "--runs", "3", "--warmup", "0",
                   "--json", tmp_path / "rec.json", "--cache-dir", tmp_path / "c")  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    assert "guessed: width=1 (give real values with --dim NAME=VALUE)" in _flat(rec.stderr)
    record = json.loads((tmp_path / "rec.json").read_text())["results"][0]
    assert record["guessed_dims"] == {"width": 1} and record["inputs"]["image"] == [1, 3, 32, 1]
    det = edgepack("bench", user_models["detector"], "--runs", "3", "--cache-dir", tmp_path / "c")
    line = one_error_line(det)
    assert "symbolic dims were guessed (height=1, width=1)" in line and "--dim" in line
    ok = edgepack("bench", user_models["detector"], "--dim", "height=64", "--dim", "width=64",
                  "--runs", "3", "--json", tmp_path / "det.json", "--cache-dir", tmp_path / "c")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    record = json.loads((tmp_path / "det.json").read_text())["results"][0]
    assert record["inputs"] == {"x": [1, 3, 64, 64]} and record["guessed_dims"] == {}


def test_integer_inputs_are_refused_by_name_and_real_feeds_are_used(user_models, tmp_path):
    # main: `lengths` was zero-filled (every frame masked) and bench took no feeds.
    refused = edgepack("bench", user_models["lengths"], "--runs", "3", "--cache-dir", tmp_path)
    line = one_error_line(refused)
    assert "lengths (int64) cannot be generated honestly" in line and "--feeds" in line
    fed = edgepack("bench", user_models["lengths"], "--feeds", user_models["lengths_feeds"],
                   "--batch", "1,4", "--runs", "3", "--json", tmp_path / "l.json",
                   "--cache-dir", tmp_path / "c")  # fmt: skip
    assert fed.returncode == 0, fed.stderr
    records = json.loads((tmp_path / "l.json").read_text())["results"]
    assert {r["input_source"] for r in records} == {"given"}
    assert sorted(r["inputs"]["lengths"][0] for r in records) == [1, 4]
    assert all(r["inputs"]["features"][1:] == [10, 8] for r in records)
    missing = edgepack("bench", user_models["lengths"], "--feeds", tmp_path / "no.npz")
    assert "--feeds" in one_error_line(missing) and "file not found" in missing.stderr


def test_estimates_use_the_shapes_of_the_feeds(user_models, tmp_path):
    # main: estimated rows bound every symbolic dim to 1 even when real feeds gave the shape.
    proc = edgepack("bench", user_models["recognizer"], "--feeds", user_models["rec_data"],
                    "--target", "rpi5", "--threads", "4", "--runs", "2", "--warmup", "0",
                    "--json", tmp_path / "r.json", "--cache-dir", tmp_path / "c")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    est = next(
        r for r in json.loads((tmp_path / "r.json").read_text())["results"]
        if r["kind"] == "estimated"
    )  # fmt: skip
    assert est["inputs"] == {"image": [1, 3, 32, 96]} and est["guessed_dims"] == {}
    expected = analyze(user_models["recognizer"], shapes={"image": [1, 3, 32, 96]})
    assert est["estimate"]["macs"] == expected.macs > analyze(user_models["recognizer"]).macs
    assert np.isclose(est["file_size_mb"], user_models["recognizer"].stat().st_size / 1e6)


def test_a_packages_samples_are_fitted_to_the_dims_the_user_names(tmp_path):
    """`--dim sequence=128` on a package times 128 tokens of its own samples (cycled), not the
    samples' length, and cuts longer ones; other axes and unnamed dims stay as they were."""
    from tiny_models import tiny_transformer_onnx

    from packager.bench.feeds import fit_to_dims

    model = tiny_transformer_onnx(tmp_path / "t.onnx")
    ids = np.array([[1, 5, 7, 2], [1, 9, 2, 0]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}
    out = fit_to_dims(feeds, model, {"sequence": 10})
    assert out["input_ids"].shape == (2, 10) and out["attention_mask"].shape == (2, 10)
    assert out["input_ids"][0].tolist() == [1, 5, 7, 2, 1, 5, 7, 2, 1, 5]
    assert fit_to_dims(feeds, model, {"sequence": 3})["input_ids"].tolist() == [
        [1, 5, 7],
        [1, 9, 2],
    ]
    assert fit_to_dims(feeds, model, {"other": 3})["input_ids"].shape == (2, 4)
    assert fit_to_dims(feeds, model, {})["input_ids"] is ids

"""edgepack_runtime: loads and verifies packages per docs/package-format.md, then predicts."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import edgepack_runtime as ep
import numpy as np
import pytest

LABELS = [str(i) for i in range(10)]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _raw(n: int | None = None, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, size=64 if n is None else (n, 64)).astype(np.float64)


# --- loading and predicting -------------------------------------------------------------


def test_load_reads_zip_and_folder_alike(digits, write_package):
    pkg = ep.load(write_package(digits))
    assert (pkg.name, pkg.task, pkg.labels) == ("tiny", "image-classification", LABELS)
    assert pkg.manifest["schema_version"] == "1.0"


def test_info_reports_identity_io_labels_metrics_and_sizes(digits, write_package):
    info = ep.load(write_package(digits)).info()
    assert info["name"] == "tiny" and info["version"] == "0.1.0"
    assert [i["name"] for i in info["inputs"]] == ["input"]
    assert [o["name"] for o in info["outputs"]] == ["logits"]
    assert info["preprocessing"]["type"] == "tensor"
    assert info["postprocessing"]["type"] == "classification"
    assert info["labels"] == LABELS
    assert info["metrics"] == {"student_int8": {"accuracy": 0.9}}
    assert info["files"] == len(digits.files)
    assert info["model_size"] == len(digits.files["model.onnx"])
    json.dumps(info)  # the CLI prints it: it must be JSON-ready


def test_predict_on_one_raw_sample_matches_numpy_reference(digits, write_package):
    pkg = ep.load(write_package(digits))
    raw = _raw()
    pred = pkg.predict(raw)
    expected = _softmax(digits.reference_logits(raw))
    assert pred.probabilities.shape == (1, 10)
    np.testing.assert_allclose(pred.probabilities, expected, atol=1e-5)
    assert pred.indices.tolist() == [int(expected.argmax())]
    assert pred.labels == [LABELS[int(expected.argmax())]]
    assert pred.scores[0] == pytest.approx(expected.max(), abs=1e-5)


def test_predict_on_a_batch_gives_softmax_rows_and_reference_argmax(digits, tmp_path):
    pkg = ep.load(digits.write(tmp_path / "pkg", as_zip=True))
    raw = _raw(12)
    pred = pkg.predict(raw)
    reference = digits.reference_logits(raw)
    np.testing.assert_allclose(pred.probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert pred.indices.tolist() == reference.argmax(axis=1).tolist()
    assert pred.labels == [LABELS[i] for i in reference.argmax(axis=1)]
    np.testing.assert_allclose(pred.outputs["logits"], reference, atol=1e-4)


def test_softmax_is_stable_for_huge_logits():
    from edgepack_runtime.postprocessing import softmax

    probs = softmax(np.array([[1000.0, 0.0, -1000.0]]))
    assert np.isfinite(probs).all() and probs[0, 0] == pytest.approx(1.0)


def test_preprocess_applies_the_documented_formula_and_adds_the_batch_dim(digits, tmp_path):
    pkg = ep.load(digits.write(tmp_path / "pkg", as_zip=False))
    raw, recorded = digits.npy("samples/raw.npy"), digits.npy("samples/input.npy")
    feeds = pkg.preprocess(raw)
    assert feeds["input"].dtype == np.float32
    np.testing.assert_array_equal(feeds["input"], recorded)
    assert pkg.preprocess(raw[0])["input"].shape == (1, 1, 8, 8)


def test_wrong_input_size_raises_input_error_naming_the_expected_shape(digits, tmp_path):
    pkg = ep.load(digits.write(tmp_path / "pkg", as_zip=True))
    with pytest.raises(ep.InputError, match=r"\(1, 8, 8\) or \(N, 1, 8, 8\)"):
        pkg.predict(np.zeros(63))


def test_run_rejects_feeds_that_are_not_the_model_inputs(digits, tmp_path):
    pkg = ep.load(digits.write(tmp_path / "pkg", as_zip=True))
    with pytest.raises(ep.InputError, match="unknown: \\['pixels'\\]"):
        pkg.run({"pixels": np.zeros((1, 1, 8, 8), np.float32)})
    with pytest.raises(ep.InputError, match="onnxruntime rejected"):
        pkg.run({"input": np.zeros((1, 1, 8, 7), np.float32)})


def test_text_package_tokenizes_and_classifies(text_package, tmp_path):
    pkg = ep.load(text_package.write(tmp_path / "text", as_zip=True))
    pred = pkg.predict(["good great good", "awful bad", "bad"])
    assert pred.labels == ["positive", "negative", "negative"]


def test_text_package_without_tokenizers_raises_unsupported_package_error(
    text_package, tmp_path, monkeypatch
):
    path = text_package.write(tmp_path / "text", as_zip=True)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` fail
    with pytest.raises(ep.UnsupportedPackageError, match="needs the tokenizers package"):
        ep.load(path)


# --- samples ------------------------------------------------------------------------------


def test_check_samples_passes_on_an_intact_package(digits, write_package):
    result = ep.load(write_package(digits)).check_samples()
    assert result.ok and result.count == 6
    assert result.max_abs_diff["logits"] < 1e-5 and "input" in result.max_abs_diff
    assert "reproduce" in result.message


def test_tampered_recorded_outputs_fail_check_and_verify_even_with_rehashed_files(
    digits, write_package
):
    logits = digits.npy("samples/logits.npy")
    logits[0, 0] += 0.5
    digits.set_npy("samples/logits.npy", logits)
    pkg = ep.load(write_package(digits.seal()))  # integrity passes: the hash was re-recorded
    result = pkg.check_samples()
    assert not result.ok
    assert result.max_abs_diff["logits"] == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ep.SampleMismatchError, match="logits"):
        pkg.verify()


@pytest.mark.parametrize(("key", "value"), [("atol", float("inf")), ("rtol", float("nan"))])
def test_a_tolerance_that_is_not_finite_is_refused_not_used(digits, tmp_path, key, value):
    """No file can carry one (NaN, Infinity and 1e999 are refused as JSON, see
    test_malformed_packages.py); a manifest edited in memory cannot either: an infinite atol
    would let any output through, a NaN one fail every sample."""
    pkg = ep.load(digits.write(tmp_path / "pkg", as_zip=False))
    pkg.manifest["samples"][key] = value
    with pytest.raises(ep.InvalidPackageError, match=rf"samples\.{key} must be a finite number"):
        pkg.check_samples()


# --- integrity: every listed file, nothing unlisted, checked before onnxruntime -------------


def test_one_flipped_byte_in_the_model_raises_integrity_error_naming_it(digits, write_package):
    model = bytearray(digits.files["model.onnx"])
    model[len(model) // 2] ^= 0x01
    digits.files["model.onnx"] = bytes(model)
    with pytest.raises(ep.IntegrityError, match=r"^model\.onnx: sha256 mismatch"):
        ep.load(write_package(digits))


def test_a_missing_listed_file_raises_integrity_error(digits, write_package):
    del digits.files["samples/input.npy"]
    with pytest.raises(ep.IntegrityError, match=r"samples/input\.npy: listed .* missing"):
        ep.load(write_package(digits))


def test_an_unlisted_extra_file_raises_integrity_error(digits, write_package):
    digits.files["extra.bin"] = b"surprise"
    with pytest.raises(ep.IntegrityError, match=r"extra\.bin: .*not listed"):
        ep.load(write_package(digits))


def test_a_size_mismatch_raises_integrity_error(digits, write_package):
    digits.manifest["files"]["README.md"]["size"] += 1
    with pytest.raises(ep.IntegrityError, match=r"README\.md: size mismatch"):
        ep.load(write_package(digits))


def test_session_options_are_validated_before_the_package_is_read(tmp_path):
    absent = tmp_path / "absent.edgepack"
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        ep.load(absent, threads=0)
    with pytest.raises(ValueError, match="NoSuchProvider"):
        ep.load(absent, providers=["NoSuchProvider"])


def test_load_accepts_a_thread_count(digits, tmp_path):
    pkg = ep.load(digits.write(tmp_path / "pkg", as_zip=True), threads=1)
    assert pkg.check_samples().ok


def test_integrity_is_checked_before_onnxruntime_sees_the_model(digits, tmp_path, monkeypatch):
    from edgepack_runtime import package

    def refuse(*args, **kwargs):
        raise AssertionError("onnxruntime was given an unverified model")

    monkeypatch.setattr(package.ort, "InferenceSession", refuse)
    digits.files["model.onnx"] += b"\0"
    with pytest.raises(ep.IntegrityError):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True))


def test_manifest_sig_may_be_present_without_being_listed(digits, write_package):
    digits.files["manifest.sig"] = b"signature"  # added after sealing: present, not listed
    assert ep.load(write_package(digits)).name == "tiny"


# --- manifest and container ---------------------------------------------------------------


def test_schema_major_2_raises_schema_version_error(digits, write_package):
    digits.manifest["schema_version"] = "2.0"
    with pytest.raises(ep.SchemaVersionError, match=r"2\.0 is not supported .* \(supports 1\.x\)"):
        ep.load(write_package(digits))


def test_a_newer_minor_schema_still_loads(digits, write_package):
    digits.manifest["schema_version"] = "1.7"
    assert ep.load(write_package(digits)).name == "tiny"


def test_a_missing_manifest_raises_invalid_package_error(digits, tmp_path):
    path = digits.write(tmp_path / "pkg", as_zip=False)
    (path / "manifest.json").unlink()
    with pytest.raises(ep.InvalidPackageError, match=r"no manifest\.json"):
        ep.load(path)


@pytest.mark.parametrize("field", ["model", "files", "inputs", "name"])
def test_a_missing_required_field_raises_invalid_package_error(digits, tmp_path, field):
    del digits.manifest[field]
    with pytest.raises(ep.InvalidPackageError, match=f"missing required field '{field}'"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True))


def test_a_path_that_is_neither_zip_nor_folder_raises_invalid_package_error(tmp_path):
    text = tmp_path / "notes.edgepack"
    text.write_text("hello")
    with pytest.raises(ep.InvalidPackageError, match="not an edgepack package"):
        ep.load(text)
    with pytest.raises(ep.InvalidPackageError, match="no such file"):
        ep.load(tmp_path / "absent.edgepack")


@pytest.mark.parametrize("member", ["../evil.txt", "samples/../../evil.txt", "/etc/evil.txt"])
def test_a_zip_member_escaping_the_package_raises_invalid_package_error(digits, tmp_path, member):
    path = digits.write(tmp_path / "pkg", as_zip=True)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(zipfile.ZipInfo(member), b"x")
    with pytest.raises(ep.InvalidPackageError, match="unsafe file name"):
        ep.load(path)


def test_manifest_names_that_differ_from_the_model_raise_invalid_package_error(digits, tmp_path):
    digits.manifest["inputs"][0]["name"] = "pixels"
    digits.manifest["preprocessing"]["input"] = "pixels"
    digits.manifest["samples"]["inputs"] = {"pixels": "samples/input.npy"}
    with pytest.raises(ep.InvalidPackageError, match=r"do not match model\.onnx"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True))


def test_a_model_onnxruntime_cannot_parse_raises_invalid_package_error(digits, tmp_path):
    digits.files["model.onnx"] = b"not a protobuf"
    with pytest.raises(ep.InvalidPackageError, match=r"model\.onnx: onnxruntime cannot parse"):
        ep.load(digits.seal().write(tmp_path / "pkg", as_zip=True))


def test_an_unknown_preprocessing_type_raises_unsupported_package_error(digits, tmp_path):
    digits.manifest["preprocessing"] = {"type": "audio"}
    with pytest.raises(ep.UnsupportedPackageError, match="preprocessing type 'audio'"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True))


# --- lean imports and the CLI -------------------------------------------------------------


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_the_runtime_imports_neither_torch_nor_packager(digits, tmp_path):
    path = digits.write(tmp_path / "pkg", as_zip=True)
    code = (
        "import sys, numpy as np, edgepack_runtime as ep\n"
        f"pred = ep.load({str(path)!r}).predict(np.zeros(64))\n"
        "assert pred.labels, pred\n"
        "print(sorted(m for m in ('torch', 'packager') if m in sys.modules))\n"
    )
    result = _python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_check_exits_zero_on_a_good_package(digits, tmp_path):
    path = digits.write(tmp_path / "pkg", as_zip=True)
    result = _python("-m", "edgepack_runtime", str(path), "--check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 6 samples reproduce")


def test_cli_check_on_a_tampered_package_prints_one_error_line(digits, tmp_path):
    digits.files["model.onnx"] = digits.files["model.onnx"][:-1] + b"\x7f"
    path = digits.write(tmp_path / "pkg", as_zip=True)
    result = _python("-m", "edgepack_runtime", str(path), "--check", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.onnx: sha256 mismatch")


def test_cli_input_prints_one_prediction_per_row(digits, tmp_path):
    path = digits.write(tmp_path / "pkg", as_zip=True)
    raw = _raw(3)
    np.save(tmp_path / "raw.npy", raw)
    result = _python("-m", "edgepack_runtime", str(path), "--input", "raw.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["predictions"]
    assert [r["index"] for r in rows] == digits.reference_logits(raw).argmax(axis=1).tolist()


@pytest.mark.parametrize("kind", ["empty", "huge-header"])
def test_cli_an_unreadable_npy_is_one_error_line(digits, tmp_path, kind):
    path = digits.write(tmp_path / "pkg", as_zip=True)
    bad = tmp_path / "bad.npy"
    if kind == "empty":
        bad.write_bytes(b"")
    else:  # a valid header that claims 10^14 float64 rows of 64
        header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000000, 64), }"
        header += " " * (118 - len(header)) + "\n"
        bad.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    result = _python("-m", "edgepack_runtime", str(path), "--input", str(bad), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: "), result.stderr

"""One input policy, in the three runtimes and `edgepack run` (docs/guarantees.md): arrays of
numbers only. bool, int and float arrays are taken (bool as 0/1, ints and floats through
float64, then cast to the model's dtype); datetime, timedelta, string, bytes, object, void and
complex arrays, a JSON list of strings, and an .npy whose header lies (negative or terabyte
shapes, a header over 10000 bytes, Fortran order) are refused with one line naming the file;
text must be non-empty and valid UTF-8."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import edgepack_runtime as ep
import numpy as np
import pytest
from cli_helpers import edgepack
from cli_helpers import one_error_line as cli_error_line
from hostile_packages import npy_header
from runtime_drivers import CHECK_JS, need_js, one_error_line
from runtimes.conftest import build_digits_package, build_text_package

RUNTIMES = ["python", "js", pytest.param("cpp", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return build_digits_package().write(tmp_path_factory.mktemp("pkg") / "digits", as_zip=False)


def _predict(runtime: str, pkg: Path, raw: Path, request) -> list[str]:
    if runtime == "python":
        return [sys.executable, "-m", "edgepack_runtime", str(pkg), "--input", str(raw)]
    if runtime == "js":
        return [need_js(), str(CHECK_JS), str(pkg), "--input", str(raw)]
    return [str(request.getfixturevalue("cpp_bin") / "predict"), str(pkg), str(raw)]


def _save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array, allow_pickle=True)
    return path


def _raw_npy(path: Path, header: bytes, data: bytes = b"") -> Path:
    path.write_bytes(header + data)
    return path


NOT_NUMBERS = {  # name: (array, the words every runtime says)
    "datetime": (np.array(["2026-01-01"] * 64, "datetime64[D]").reshape(1, 64), "datetime"),
    "timedelta": (np.arange(64, dtype="timedelta64[s]").reshape(1, 64), "timedelta"),
    "string": (np.array([["1.5"] * 64]), "string"),
    "bytes": (np.array([[b"1"] * 64]), "bytes"),
    "object": (np.array([[1.0] * 64], dtype=object), "object"),
    "void": (np.zeros((1, 64), "V4"), "void"),
    "complex": (np.ones((1, 64), np.complex128), "complex"),
}


@pytest.mark.parametrize("kind", list(NOT_NUMBERS))
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_array_that_is_not_numbers_is_refused_in_one_line(
    runtime, kind, digits, request, tmp_path
):
    array, word = NOT_NUMBERS[kind]
    raw = _save(tmp_path / f"{kind}.npy", array)
    message = one_error_line(_predict(runtime, digits, raw, request))
    assert str(raw) in message and f"{word} arrays" in message, message
    assert "are not numbers" in message, message


LYING = {  # name: (header, data, the words every runtime says)
    "negative shape": (npy_header((-1, 64)), b"", "negative dimension"),
    "terabyte shape": (npy_header((1 << 40, 64)), bytes(256), "data bytes"),
    "short data": (npy_header((2, 64)), bytes(256), "data bytes"),
    "fortran order": (npy_header((1, 64), fortran=True), bytes(256), "Fortran-order"),
    "big-endian": (npy_header((1, 64), descr=">f4"), bytes(256), "big-endian"),
    "header over the cap": (
        b"\x93NUMPY\x02\x00" + struct.pack("<I", 20_000) + b" " * 20_000,
        b"",
        "over the 10000-byte cap",
    ),
    "not an npy": (b"PK\x03\x04 a zip, say", b"", "not an .npy file"),
    "empty": (b"", b"", "not an .npy file"),
}


@pytest.mark.parametrize("case", list(LYING))
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_npy_whose_header_lies_is_refused_before_its_data_is_read(
    runtime, case, digits, request, tmp_path
):
    header, data, words = LYING[case]
    raw = _raw_npy(tmp_path / "raw.npy", header, data)
    message = one_error_line(_predict(runtime, digits, raw, request))
    assert str(raw) in message and words in message, message


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bool_and_int_arrays_are_numbers_cast_the_same_way(runtime, digits, request, tmp_path):
    """Taken, not refused: bool as 0/1, ints as their values; every runtime gives the labels of
    the same numbers as float32."""
    ints = np.random.default_rng(0).integers(0, 17, (3, 64)).astype(np.int64)
    answers = []
    for array in (ints, ints.astype(np.float32), ints > 8, (ints > 8).astype(np.float32)):
        raw = _save(tmp_path / f"{array.dtype}-{len(answers)}.npy", array)
        proc = subprocess.run(
            _predict(runtime, digits, raw, request), capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout.strip()
        answers.append(
            [p["label"] for p in json.loads(out)["predictions"]]
            if out.startswith("{")
            else [line.split()[0] for line in out.splitlines()]
        )
    assert answers[0] == answers[1] and answers[2] == answers[3], answers


@pytest.mark.parametrize(
    "raw",
    [["1.5"] * 64, [[0.5] * 63 + ["x"]], [None] * 64, [[1.0] * 32, [2.0] * 32 + ["3"]]],
    ids=["strings", "a string among numbers", "nulls", "ragged"],
)
def test_edgepack_run_refuses_a_json_input_that_is_not_numbers(raw, digits, tmp_path):
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(raw))
    proc = edgepack("run", digits, "--input", path)
    line = cli_error_line(proc)
    assert proc.returncode == 2 and "input 'input'" in line, line


def test_the_python_api_refuses_strings_datetimes_and_objects(tmp_path):
    pkg = ep.load(build_digits_package().write(tmp_path / "pkg", as_zip=True))
    for raw in (["1"] * 64, np.zeros(64, "datetime64[s]"), np.array([1.0] * 64, dtype=object)):
        with pytest.raises(ep.InputError, match="input 'input'"):
            pkg.predict(raw)
    assert pkg.predict(np.ones(64, bool)).labels == pkg.predict(np.ones(64)).labels


@pytest.fixture(scope="module")
def text_pkg(tmp_path_factory) -> Path:
    pytest.importorskip("tokenizers")
    return build_text_package().write(tmp_path_factory.mktemp("text") / "text", as_zip=True)


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "empty text"), ("   \t", "empty text"), (b"caf\xe9", "not valid UTF-8")],
    ids=["empty", "blank", "latin-1 bytes"],
)
def test_edgepack_run_refuses_empty_and_non_utf8_text(text, words, text_pkg):
    """Bytes that are not UTF-8 reach Python's argv as lone surrogates: refused, not tokenized
    (and never printed back raw: the error line names the character's position)."""
    argv = [sys.executable, "-m", "packager.cli", "run", str(text_pkg), "--text"]
    proc = subprocess.run([*map(str.encode, argv), text if isinstance(text, bytes) else
                           text.encode()], capture_output=True, timeout=120)  # fmt: skip
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == 2 and "Traceback" not in err, err
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert words in line, line


def test_the_python_api_refuses_numbers_as_text_and_undecodable_bytes(text_pkg):
    pkg = ep.load(text_pkg)
    assert pkg.predict(["good great"]).labels == ["positive"]
    for raw, words in (([12345], "expected text, got int"), (b"\xff\xfe", "not valid UTF-8")):
        with pytest.raises(ep.InputError, match=words):
            pkg.predict(raw)
    assert pkg.predict([b"great"]).labels == ["positive"]  # bytes: decoded as UTF-8


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompt", "words"), [(b"\xff\xfe once", "not valid UTF-8"), (b" ", "empty text")]
)
def test_edgepack_run_refuses_a_prompt_that_is_not_utf8_or_empty(prompt, words, tiny_lm_build):
    argv = [sys.executable, "-m", "packager.cli", "run", str(tiny_lm_build.package_path)]
    proc = subprocess.run([*map(str.encode, argv), b"--prompt", prompt],
                          capture_output=True, timeout=300)  # fmt: skip
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == 2 and "Traceback" not in err and proc.stdout == b"", err
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert f"prompt: {words}" in line, line

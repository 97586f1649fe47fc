"""Bounds on every numeric option (packager/limits.py, docs/guarantees.md): a value past its
bound is one `error:` line when the option is parsed or the recipe loads (exit 2), never a hang,
a crash (100000 threads: SIGSEGV in onnxruntime's thread pool) or minutes of work first.
Threads: at most 4 per core of the machine, in the packager and the three runtimes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import edgepack_runtime as ep
import pytest
from cli_helpers import edgepack, one_error_line
from runtime_drivers import CHECK_JS, need_js
from runtime_drivers import one_error_line as runtime_error_line
from runtimes.conftest import build_digits_package
from tiny_models import outlier_mlp_onnx

MAX_THREADS = 4 * (os.cpu_count() or 1)
QUICK = 60


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return outlier_mlp_onnx(tmp_path_factory.mktemp("m") / "m.onnx")


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return build_digits_package().write(tmp_path_factory.mktemp("pkg") / "digits", as_zip=True)


def _refused(*args, words: str) -> None:
    proc = edgepack(*args, timeout=QUICK)
    line = one_error_line(proc)
    assert proc.returncode == 2 and words in line, line


def test_bench_threads_100000_is_one_error_line(model):
    _refused(
        "bench", model, "--threads", "100000", words=f"thread counts must be 1 to {MAX_THREADS}"
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--threads", f"1,{MAX_THREADS + 1}"),
        ("--threads", "0"),
        ("--runs", "10000000"),
        ("--warmup", "1000000"),
        ("--batch", "1,1000000"),
        ("--seconds", "nan"),
        ("--seconds", "86400"),
        ("--memory-cap", "1e12"),
        ("--dim", "batch=1000000000"),
        ("--dim", "batch=" + "9" * 5000),
    ],
)
def test_bench_refuses_every_numeric_option_past_its_bound(option, value, model):
    _refused("bench", model, option, value, words=option.lstrip("-").split("-")[0])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--threads", "100000"),
        ("--calib-samples", "0"),
        ("--calib-batch", "10000000"),
        ("--max-trials", "1000000"),
        ("--eval-samples", "100000000"),
        ("--block-size", "1"),
        ("--max-drop", "2"),
        ("--iou-threshold", "inf"),
    ],
)
def test_quantize_refuses_every_numeric_option_past_its_bound(option, value, model, tmp_path):
    _refused("quantize", model, "-o", tmp_path / "q.onnx", option, value, words=option)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-new-tokens", "1000000000"), ("--top-k", "-1"), ("--seed", str(2**40)),
     ("--top", "0"), ("--temperature", "inf")],
)  # fmt: skip
def test_run_refuses_every_numeric_option_past_its_bound(option, value, digits):
    _refused("run", digits, "--prompt", "hi", option, value, words=option)


def test_inspect_batch_past_its_bound(digits):
    _refused("inspect", digits, "--batch", "1000000000", words="--batch")


@pytest.mark.parametrize(
    "override",
    ["bench.threads=[100000]", "distill.threads=100000", "bench.runs=100000000",
     "bench.dims={sequence: 0}", "quantize.dims={sequence: 2000000}"],
)  # fmt: skip
def test_a_recipe_field_past_its_bound_fails_when_the_recipe_loads(override, tmp_path):
    proc = edgepack("build", "--dry-run", "--set", override, "--cache-dir", tmp_path / "c",
                    timeout=QUICK)  # fmt: skip
    line = one_error_line(proc)
    assert proc.returncode == 2 and override.split("=")[0] in line, line


def test_the_python_runtime_refuses_100000_threads(digits):
    with pytest.raises(ValueError, match=f"at most {MAX_THREADS}"):
        ep.load(digits, threads=100_000)
    message = runtime_error_line(
        [sys.executable, "-m", "edgepack_runtime", str(digits), "--threads", "100000"]
    )
    assert f"at most {MAX_THREADS}" in message, message


def test_the_js_runtime_refuses_100000_threads(digits):
    message = runtime_error_line([need_js(), str(CHECK_JS), str(digits), "--threads", "100000"])
    assert f"at most {MAX_THREADS}" in message, message


@pytest.mark.slow
def test_the_cpp_runtime_refuses_100000_threads(cpp_bin, digits, tmp_path):
    """Options::threads of the C++ library, through a three-line app."""
    source = tmp_path / "threads.cpp"
    source.write_text(
        '#include <iostream>\n#include "edgepack.hpp"\n'
        "int main(int, char** argv) { edgepack::Options o; o.threads = 100000;\n"
        "  try { edgepack::Package::open(argv[1], o); } catch (const edgepack::Error& e) {\n"
        '    std::cerr << "error: " << e.what() << "\\n"; return 1; } return 0; }\n'
    )
    src = Path(__file__).resolve().parents[2] / "runtimes" / "cpp" / "src"
    lib = next(cpp_bin.rglob("libedgepack.a"))
    ort = cpp_bin.parent / ".deps" / "lib" / "libonnxruntime.so"  # setup.sh links the wheel's
    genai = ort.parent / "libonnxruntime-genai.so"  # language models' tokenizers (setup.sh)
    exe = tmp_path / "threads"
    subprocess.run(
        ["c++", "-std=c++17", f"-I{src}", str(source), str(lib), str(ort), str(genai),
         "-lcrypto", "-licuuc", f"-Wl,-rpath,{ort.parent}", "-o", str(exe)],
        check=True, timeout=300,
    )  # fmt: skip
    folder = tmp_path / "pkg"
    with ep.open_package(digits) as reader:
        reader.extract_to(folder)
    message = runtime_error_line([str(exe), str(folder)])
    assert f"threads must be 0 (onnxruntime's default) to {MAX_THREADS}" in message, message

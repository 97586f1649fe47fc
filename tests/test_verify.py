"""`edgepack verify --runtime ...` (packager/verify.py): the same package through Python, C++ and
Node reproduces its recorded sample outputs, and all three refuse a flipped byte or a wrong
signature. C++ and Node cases skip with a reason when their toolchains are missing (CI has them).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from packager import verify as verify_mod
from packager.cli import cli
from packager.signing import keygen

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def js_ready() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (Node.js 18+): scripts/setup_system.sh installs it")
    if not (verify_mod.JS_CHECK.parent.parent / "node_modules" / "onnxruntime-node").is_dir():
        pytest.skip(
            "runtimes/js is not installed: cd runtimes/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci"
        )


@pytest.fixture
def ready(request: pytest.FixtureRequest):
    """Make the named runtime available (or skip): python needs nothing more."""

    def need(runtime: str) -> None:
        if runtime == "cpp":
            request.getfixturevalue("cpp_bin")
        elif runtime.startswith("js"):
            request.getfixturevalue("js_ready")

    return need


@pytest.fixture(scope="module")
def signed(tiny_mobile_build, cache_dir, tmp_path_factory):
    """The mobile tiny build, published signed, plus the signer's and a stranger's public keys."""

    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    root = tmp_path_factory.mktemp("verify")
    private, public = keygen(root / "signer")
    _, stranger = keygen(root / "stranger")
    package = {"out_dir": str(root / "dist"), "mobile": True, "fix_shapes": {"input": [1, 1, 8, 8]}}
    recipe = tiny_recipe(package=package)  # tiny_mobile_build's recipe, published elsewhere
    result = build(recipe, cache_dir=cache_dir, reporter=SilentReporter(), sign_key=private)
    return result.package_path, public, stranger


def _verify(*args: str):
    return CliRunner().invoke(cli, ["verify", *args])


def _flip_model_byte(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for item in zin.infolist():
            data = bytearray(zin.read(item))
            if item.filename == "model.onnx":
                data[len(data) // 2] ^= 0x01
            zout.writestr(item, bytes(data))
    return dest


@pytest.mark.parametrize("runtime", ["python", "cpp", "js"])
def test_each_runtime_reproduces_the_recorded_samples_of_a_signed_package(signed, ready, runtime):
    ready(runtime)
    package, public, _ = signed
    out = _verify(str(package), "--runtime", runtime, "--pubkey", str(public))
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith(f"{runtime}: ok: ") and "samples reproduced" in lines[0]
    assert len(lines) == (2 if runtime == "python" else 1)


def test_runtime_all_runs_python_the_ort_model_cpp_and_node(signed, cpp_bin, js_ready):
    package, public, _ = signed
    out = _verify(str(package), "--runtime", "all", "--pubkey", str(public))
    assert out.exit_code == 0, out.output
    names = [line.split(": ok: ")[0] for line in out.output.splitlines()]
    assert names == ["python", "python (model.ort)", "cpp", "js"]


@pytest.mark.parametrize("runtime", ["python", "cpp", "js"])
def test_each_runtime_refuses_one_flipped_byte_naming_the_file(signed, ready, tmp_path, runtime):
    ready(runtime)
    package, public, _ = signed
    bad = _flip_model_byte(package, tmp_path / "bad.edgepack")
    out = _verify(str(bad), "--runtime", runtime, "--pubkey", str(public))
    assert out.exit_code == 5
    line = out.output.splitlines()[0]
    assert line.startswith(f"{runtime}: error: ") and "model.onnx" in line
    assert "sha256" in line.lower() or "hash" in line.lower(), line


@pytest.mark.parametrize("runtime", ["python", "cpp", "js"])
def test_each_runtime_refuses_a_signature_by_another_key(signed, ready, runtime):
    ready(runtime)
    package, _, stranger = signed
    out = _verify(str(package), "--runtime", runtime, "--pubkey", str(stranger))
    assert out.exit_code == 5
    line = out.output.splitlines()[0]
    assert line.startswith(f"{runtime}: error: ") and "signature" in line.lower(), line
    assert "refused by" in out.output


def test_a_runtime_that_is_not_built_fails_with_how_to_build_it(tiny_build, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEPACK_CPP_CHECK", str(tmp_path / "absent" / "edgepack_check"))
    out = _verify(str(tiny_build.package_path), "--runtime", "python", "--runtime", "cpp")
    assert out.exit_code == 5
    lines = out.output.splitlines()
    assert lines[0].startswith("python: ok: ")
    assert lines[1].startswith("cpp: error: the C++ runtime is not built")
    assert "bash runtimes/cpp/setup.sh" in lines[1]


def test_default_is_python_only_and_a_plain_package_has_no_ort_line(tiny_build):
    out = _verify(str(tiny_build.package_path))
    assert out.exit_code == 0, out.output
    assert [ln.split(":")[0] for ln in out.output.splitlines()] == ["python"]

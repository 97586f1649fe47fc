"""runtimes/js: the Node runtime verifies a built digits package and reproduces its samples.

Drives `node runtimes/js/bin/check.js` (the interface `edgepack verify --runtime js` uses) on
the session's tiny digits build, as a zip and as a folder, on onnxruntime-node and on
onnxruntime-web's wasm backend; and checks that tampered or wrongly signed packages are refused
with one `error:` line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "runtimes" / "js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (Node.js 18+ is needed)"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "onnxruntime-node").is_dir(),
        reason="runtimes/js is not installed: cd runtimes/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci",
    ),
]


def _node(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NODE, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def _check(pkg: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return _node(JS / "bin" / "check.js", pkg, *args)


def _refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, nothing on stdout, exactly one `error:` line on stderr containing `fragments`."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def _zip(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return dest


@pytest.fixture(scope="module")
def package_zip(tiny_build) -> Path:
    return tiny_build.package_path


def _unzip(package: Path, folder: Path) -> Path:
    with zipfile.ZipFile(package) as zf:
        zf.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def package_folder(package_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _unzip(package_zip, tmp_path_factory.mktemp("js") / "digits")


@pytest.fixture(scope="module")
def fp32_package(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same tiny build shipping its fp32 student (only package reruns): zip + folder."""
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    out = tmp_path_factory.mktemp("dist-fp32")
    recipe = tiny_recipe(package={"out_dir": str(out), "model": "fp32"})
    path = build(recipe, cache_dir=cache_dir, reporter=SilentReporter()).package_path
    return {"zip": path, "folder": _unzip(path, out / "folder")}


@pytest.fixture
def copy(package_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the package folder that a test may tamper with."""
    return Path(shutil.copytree(package_folder, tmp_path / "pkg"))


def test_node_unit_tests_pass():
    result = _node("--test", JS / "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


def _reproduces(result: subprocess.CompletedProcess[str], folder: Path, backend: str) -> None:
    assert result.returncode == 0, result.stderr
    count = json.loads((folder / "manifest.json").read_text())["samples"]["count"]
    assert result.stdout.startswith(f"ok: {count} samples reproduced (max abs diff ")
    assert f"backend {backend}" in result.stdout


@pytest.mark.parametrize("layout", ["zip", "folder"])
def test_recorded_int8_samples_reproduce_on_onnxruntime_node(layout, package_zip, package_folder):
    pkg = package_zip if layout == "zip" else package_folder
    _reproduces(_check(pkg, "--backend", "node"), package_folder, "node")


@pytest.mark.slow  # wasm starts compile onnxruntime's WebAssembly (~1 s each)
def test_recorded_int8_samples_reproduce_on_wasm(package_zip, package_folder):
    """The default INT8 build uses 7-bit weights (quantize.reduce_range), so the host's integer
    kernels, onnxruntime-web's float evaluation of the QDQ graph and ARM all agree exactly."""
    _reproduces(_check(package_zip, "--backend", "wasm"), package_folder, "wasm")


@pytest.mark.slow  # wasm starts compile onnxruntime's WebAssembly (~1 s each)
@pytest.mark.parametrize("backend", ["node", "wasm"])
@pytest.mark.parametrize("layout", ["zip", "folder"])
def test_recorded_fp32_samples_reproduce_on_both_backends(backend, layout, fp32_package):
    result = _check(fp32_package[layout], "--backend", backend)
    _reproduces(result, fp32_package["folder"], backend)


def test_example_prints_the_top_label_of_each_sample(package_zip, package_folder):
    result = _node(JS / "examples" / "predict.js", package_zip)
    assert result.returncode == 0, result.stderr
    logits = np.load(package_folder / "samples" / "logits.npy")
    labels = json.loads((package_folder / "manifest.json").read_text())["postprocessing"]["labels"]
    expected = [f"{i}: {labels[k]} (" for i, k in enumerate(logits.argmax(axis=1))]
    lines = result.stdout.splitlines()
    assert [line[: len(e)] for line, e in zip(lines, expected, strict=True)] == expected


def test_the_docs_snippet_is_copied_from_the_tested_example():
    page = (REPO / "docs" / "how-to" / "use-the-package.md").read_text()
    section = page.split("### JavaScript", 1)[1]
    snippet = section.split("```js\n", 1)[1].split("```", 1)[0]
    example = (JS / "examples" / "predict.js").read_text()
    assert snippet.strip() and snippet.strip() in example


@pytest.mark.parametrize("layout", ["zip", "folder"])
def test_one_flipped_byte_in_the_model_is_refused(layout, copy, tmp_path):
    model = copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    pkg = _zip(copy, tmp_path / "flipped.edgepack") if layout == "zip" else copy
    _refused(_check(pkg), "error: model.onnx: sha256 mismatch (expected ", ", got ")


def test_an_unlisted_extra_file_is_refused(copy):
    (copy / "samples" / "extra.npy").write_bytes(b"not listed")
    _refused(_check(copy), "samples/extra.npy: present in the package but not listed")


def test_an_unknown_schema_major_is_refused(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["schema_version"] = "2.0"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    _refused(_check(copy), "schema_version 2.0 is not supported", "supports 1.x")


@pytest.mark.parametrize(
    ("member", "message"),
    [("../evil.txt", "invalid relative path"), ("model.onnx", "duplicate zip member")],
)
def test_a_hostile_zip_member_is_refused(member, message, package_zip, tmp_path):
    hostile = tmp_path / "hostile.edgepack"
    shutil.copy(package_zip, hostile)
    with warnings.catch_warnings(), zipfile.ZipFile(hostile, "a") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        zf.writestr(member, b"x")
    _refused(_check(hostile), message)


def test_a_missing_package_is_one_error_line(tmp_path):
    _refused(_check(tmp_path / "nope.edgepack"), "no such file or folder")


def test_an_unknown_backend_is_one_error_line(package_zip):
    _refused(_check(package_zip, "--backend", "gpu"), "backend must be one of node, wasm")


# --- signatures: manifest.sig = raw ed25519 signature over the exact manifest.json bytes ------


def _keypair(directory: Path, name: str):
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from cryptography.hazmat.primitives import serialization

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = directory / f"{name}.pem"
    path.write_bytes(pem)
    return key, path


@pytest.fixture
def signed(copy, tmp_path) -> tuple[Path, Path]:
    """The package copy signed with a fresh key; returns (package folder, public key PEM)."""
    key, pub = _keypair(tmp_path, "right")
    (copy / "manifest.sig").write_bytes(key.sign((copy / "manifest.json").read_bytes()))
    return copy, pub


@pytest.mark.parametrize("layout", ["zip", "folder"])
def test_a_signed_package_passes_with_the_right_key(layout, signed, tmp_path):
    folder, pub = signed
    pkg = _zip(folder, tmp_path / "signed.edgepack") if layout == "zip" else folder
    result = _check(pkg, "--pubkey", pub)
    assert result.returncode == 0, result.stderr
    assert "signature ok" in result.stdout


def test_a_signed_package_is_refused_with_a_wrong_key(signed, tmp_path):
    folder, _ = signed
    _, wrong = _keypair(tmp_path, "wrong")
    _refused(_check(folder, "--pubkey", wrong), "manifest.sig: signature does not match")


def test_a_manifest_edited_after_signing_is_refused(signed):
    folder, pub = signed
    manifest = folder / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"name": "', b'"name": "x', 1))
    _refused(_check(folder, "--pubkey", pub), "manifest.sig: signature does not match")


def test_an_unsigned_package_is_refused_when_a_key_is_given(copy, tmp_path):
    _, pub = _keypair(tmp_path, "right")
    _refused(_check(copy, "--pubkey", pub), "manifest.sig: the package is not signed")


def test_a_key_that_is_not_ed25519_pem_is_refused(signed, tmp_path):
    folder, _ = signed
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("hello")
    _refused(_check(folder, "--pubkey", bogus), "bogus.pem: not a PEM public key")


def test_a_private_key_given_as_the_public_key_is_refused(signed, tmp_path):
    folder, _ = signed
    key, _ = _keypair(tmp_path, "mine")
    from cryptography.hazmat.primitives import serialization

    private = tmp_path / "mine.key"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    _refused(_check(folder, "--pubkey", private), "mine.key: this is a private key")


def test_npy_reader_matches_numpy_for_each_supported_dtype(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "f4": rng.normal(size=(3, 4)).astype("<f4"),
        "f8": rng.normal(size=(2, 1, 3)),
        "i8": rng.integers(-(2**40), 2**40, size=5),
        "i4": rng.integers(-1000, 1000, size=(2, 2)).astype("<i4"),
        "u1": rng.integers(0, 255, size=7).astype(np.uint8),
        "scalar": np.array(2.5, dtype="<f4"),
    }
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)
    script = (
        "const fs = require('fs'); const { readNpy } = require('./runtimes/js/src');"
        "const out = {}; for (const n of process.argv.slice(1)) {"
        " const a = readNpy(fs.readFileSync(`${n}.npy`));"
        " out[n.split('/').pop()] = {shape: a.shape, data: Array.from(a.data, String)}; }"
        "console.log(JSON.stringify(out));"
    )
    result = _node("-e", script, *(tmp_path / n for n in arrays))
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    for name, array in arrays.items():
        assert got[name]["shape"] == list(array.shape), name
        values = np.array([float(v) for v in got[name]["data"]])
        np.testing.assert_array_equal(values, array.astype(np.float64).ravel(), err_msg=name)

"""import_package stage: a package enters the cache as its model plus its sample feeds, every
member checked against the manifest's sha256."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from packager.errors import PackageError
from packager.pipeline import run
from packager.plans import model_step
from packager.progress import SilentReporter


def _run(path, cache):
    return run([model_step("pkg", path)], cache_dir=cache, reporter=SilentReporter())


def test_a_package_brings_its_model_and_samples(tiny_build, tmp_path):
    pkg = tiny_build.package_path
    art = _run(pkg, tmp_path / "c").artifact("pkg")
    with zipfile.ZipFile(pkg) as zf:
        assert art.file().read_bytes() == zf.read("model.onnx")
        recorded = np.load(zf.open("samples/input.npy"))
    with np.load(art.file("samples.npz")) as feeds:
        assert np.array_equal(feeds["input"], recorded)
    assert art.meta["name"] == "digits-tiny" and art.meta["sample_count"] == len(recorded)


def test_a_member_that_does_not_match_the_manifest_is_refused(tiny_build, tmp_path):
    src = tiny_build.package_path
    bad = tmp_path / "bad.edgepack"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "model.onnx":
                data = data[:-1] + bytes([data[-1] ^ 1])
            zout.writestr(info, data)
    with pytest.raises(PackageError, match=r"model\.onnx: sha256 mismatch"):
        _run(bad, tmp_path / "c")


def test_a_file_that_is_not_a_package_is_one_line(tmp_path):
    fake = tmp_path / "x.edgepack"
    fake.write_bytes(b"not a zip")
    with pytest.raises(PackageError, match="not an edgepack package"):
        _run(fake, tmp_path / "c")

"""A folder package's model is loaded by onnxruntime from its file (issue 28: holding the model's
bytes in Python while onnxruntime parsed them made the runtime's peak memory a whole model
larger than onnxruntime-genai's on a 135M LM), and it is hashed again once onnxruntime has read
it: a model changed in between is refused. A zip's model is read, verified and passed as bytes."""

from __future__ import annotations

import edgepack_runtime as rt
import pytest
from edgepack_runtime import package as package_module
from edgepack_runtime.reader import open_package


def test_a_folder_model_is_loaded_from_its_file_and_a_zip_model_from_bytes(digits, tmp_path):
    folder = digits.seal().write(tmp_path / "pkg", as_zip=False)
    zipped = digits.write(tmp_path / "zipped", as_zip=True)
    with open_package(folder) as reader:
        assert reader.local_path(digits.manifest["model"]) == folder / digits.manifest["model"]
    with open_package(zipped) as reader:
        assert reader.local_path(digits.manifest["model"]) is None
    seen = []
    real = package_module._session

    def spy(model, *args):
        seen.append(type(model).__name__)
        return real(model, *args)

    package_module._session = spy
    try:
        for path in (folder, zipped):
            assert rt.load(path).check_samples().ok
    finally:
        package_module._session = real
    assert seen == ["str", "bytes"]


def test_a_model_changed_while_onnxruntime_reads_it_is_refused(digits, tmp_path, monkeypatch):
    folder = digits.seal().write(tmp_path / "pkg", as_zip=False)
    model = folder / digits.manifest["model"]
    real = package_module._session

    def swap_after_reading(source, *args):
        session = real(source, *args)
        data = model.read_bytes()
        model.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # not what onnxruntime read
        return session

    monkeypatch.setattr(package_module, "_session", swap_after_reading)
    with pytest.raises(rt.IntegrityError, match="sha256 mismatch"):
        rt.load(folder)

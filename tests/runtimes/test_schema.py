"""The manifest schema: one definition (edgepack_runtime.schema), a committed JSON file generated
from it, and the runtime's own validator agreeing with a real JSON Schema implementation."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import edgepack_runtime as ep
import jsonschema
import pytest
from edgepack_runtime.schema import MANIFEST_SCHEMA, check, schema_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "runtimes" / "manifest.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)


def _runtime_accepts(manifest: Any) -> bool:
    try:
        check(manifest)
    except ep.InvalidPackageError:
        return False
    return True


def test_the_committed_schema_file_is_generated_from_the_runtime_definition():
    assert SCHEMA_FILE.read_text() == schema_json(), (
        "runtimes/manifest.schema.json drifted: run python scripts/write_manifest_schema.py"
    )
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "write_manifest_schema.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))


@pytest.mark.slow
def test_a_built_mobile_package_manifest_validates_against_the_published_schema(
    tiny_mobile_build,
):
    with zipfile.ZipFile(tiny_mobile_build.package_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    jsonschema.validate(manifest, json.loads(SCHEMA_FILE.read_text()))
    assert "mobile" in manifest  # the optional block is validated too, not skipped
    assert manifest["schema_version"] == "1.3" and "teacher" in manifest["provenance"]
    assert _runtime_accepts(manifest)


def _set(path: str, value: Any):
    """A mutation: set manifest[a][b]... (path "a.b", list indices as digits) to value."""

    def apply(m: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        for p in parents:
            m = m[p]
        m[last] = value

    return apply


def _drop(path: str):
    def apply(m: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for p in parents:
            m = m[int(p) if p.isdigit() else p]
        del m[last]

    return apply


MUTATIONS = {
    **{f"drop {key}": _drop(key) for key in MANIFEST_SCHEMA["required"]},
    "name int": _set("name", 3),
    "inputs empty": _set("inputs", []),
    "inputs dict": _set("inputs", {}),
    "input no shape": _drop("inputs/0/shape"),
    "shape float dim": _set("inputs/0/shape", [1.5, 8]),
    "shape bool dim": _set("inputs/0/shape", [True, 8]),
    "sha256 upper": _set("files/model.onnx/sha256", "A" * 64),
    "size negative": _set("files/model.onnx/size", -1),
    "size bool": _set("files/model.onnx/size", True),
    "size float": _set("files/model.onnx/size", 1.0),
    "samples no atol": _drop("samples/atol"),
    "samples atol string": _set("samples/atol", "0.1"),
    "preprocessing no type": _drop("preprocessing/type"),
    "preprocessing list": _set("preprocessing", []),
    "schema 1.7": _set("schema_version", "1.7"),
    "unknown top-level field": _set("future", {"x": 1}),
    "benchmark without kind": _set("benchmarks", [{"p50": 1}]),
    "benchmark new kind": _set("benchmarks", [{"kind": "simulated"}]),
    "mobile ok": _set("mobile", {"model": "a.ort", "required_operators": "c"}),
    "mobile no config": _set("mobile", {"model": "a.ort"}),
    "provenance ok": _set(
        "provenance",
        {
            "teacher": {"source": "hf:x", "license": {"id": "llama3"}, "terms": {"id": "llama3"}},
            "accepted": [{"terms": "llama3", "flag": "--accept-terms llama3", "at": "t"}],
        },
    ),
    "provenance acceptance without time": _set(
        "provenance", {"accepted": [{"terms": "llama3", "flag": "--accept-terms llama3"}]}
    ),
    "provenance teacher without terms": _set(
        "provenance", {"teacher": {"source": "hf:x", "license": {"id": "mit"}}}
    ),
    "provenance data not a list": _set("provenance", {"data": {"source": "x"}}),
    "usability empty": _set(
        "mobile", {"model": "a", "required_operators": "b", "usability": {"NNAPI": {}}}
    ),
}


@pytest.mark.parametrize("label", MUTATIONS)
def test_the_runtime_validator_and_jsonschema_agree(digits, label):
    manifest = digits.manifest
    MUTATIONS[label](manifest)
    assert _runtime_accepts(manifest) == VALIDATOR.is_valid(manifest)


def test_a_1_0_package_without_provenance_is_still_read(digits):
    assert digits.manifest["schema_version"] == "1.0" and "provenance" not in digits.manifest
    assert _runtime_accepts(digits.manifest) and VALIDATOR.is_valid(digits.manifest)
    MUTATIONS["provenance ok"](digits.manifest)
    assert _runtime_accepts(digits.manifest)  # 1.1's optional block in a 1.0-era reader's terms
    MUTATIONS["provenance acceptance without time"](digits.manifest)
    assert not _runtime_accepts(digits.manifest)  # an acceptance says when it was given


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*prefix, i))
    return found


# The digits fixture is only read: each example works on its own deep copy.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_the_runtime_validator_agrees_with_jsonschema_on_random_replacements(digits, data):
    manifest = copy.deepcopy(digits.manifest)
    path = data.draw(st.sampled_from(_paths(manifest)[1:]))
    node = manifest
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = data.draw(_JSON)
    assert _runtime_accepts(manifest) == VALIDATOR.is_valid(manifest), path


def test_a_wrong_type_names_the_field_and_both_types(digits, tmp_path):
    digits.manifest["inputs"][0]["dtype"] = 7
    with pytest.raises(ep.InvalidPackageError, match=r"'inputs\[0\]\.dtype' must be string, got"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True))


def test_a_bad_sha256_is_explained_by_the_schema_description(digits, tmp_path):
    digits.manifest["files"]["model.onnx"]["sha256"] = "abc"
    with pytest.raises(ep.InvalidPackageError, match="is not lowercase hex sha256 of the file"):
        ep.load(digits.write(tmp_path / "pkg", as_zip=True))


def test_inspect_provenance_of_a_1_0_package_says_it_has_none(digits, write_package):
    from click.testing import CliRunner

    from packager.cli import cli

    path = write_package(digits.seal())
    out = CliRunner().invoke(cli, ["inspect", str(path), "--provenance"])
    assert out.exit_code == 0, out.output
    assert "no provenance block (a package written before schema 1.1)" in out.output


def test_a_language_model_manifest_validates_with_its_generation_block(tiny_lm_build):
    """Schema 1.2's generation block, in the published schema and in the runtime's own check;
    a generation block without its required kv_cache is refused by both."""
    with zipfile.ZipFile(tiny_lm_build.package_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(manifest, schema)
    assert manifest["schema_version"] == "1.3" and _runtime_accepts(manifest)
    broken = json.loads(json.dumps(manifest))
    del broken["generation"]["kv_cache"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    assert not _runtime_accepts(broken)

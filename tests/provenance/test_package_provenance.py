"""What a built package says about where it came from: the manifest's provenance block, the
Hugging Face-style card and the CycloneDX ML-BOM (validated by cyclonedx-python-lib)."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from packager.provenance.card import front_matter

pytestmark = pytest.mark.slow


def _read(build, name: str) -> bytes:
    with zipfile.ZipFile(build.package_path) as zf:
        return zf.read(name)


def test_the_digits_package_carries_both_parents_the_data_and_the_method(tiny_build):
    manifest = json.loads(_read(tiny_build, "manifest.json"))
    assert manifest["schema_version"] == "1.3"
    prov = manifest["provenance"]
    teacher = prov["teacher"]
    assert (
        teacher["source"] == "builtin:digits-cnn" and teacher["terms"]["id"] == "edgepack-builtin"
    )
    assert teacher["id"] == tiny_build.artifact("teacher").id
    (weights,) = teacher["weights"]  # trained in this build: the cached weights, hashed
    cached = tiny_build.artifact("teacher").file()
    assert weights["sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    assert prov["student_init"]["kind"] == "fresh" and prov["student_init"]["arch"] == "mlp"
    (data,) = prov["data"]
    assert data["source"] == "builtin:digits" and len(data["sha256"]) == 64
    assert (
        data["rows"] == tiny_build.artifact("data").meta["sizes"] and data["generated_by"] is None
    )
    method = prov["method"]
    assert method["losses"] == {"logits_kd": 0.7, "label_ce": 0.3} and method["temperature"] == 4.0
    assert method["steps"] > 0 and method["on_policy_fraction"] == 0.0
    assert prov["quantized"]["mode"] == "static" and prov["accepted"] == []
    assert prov["policy"] == "warn" and prov["gate"] == "quiet"


def test_the_model_card_has_front_matter_with_the_measured_metrics(tiny_build):
    card = _read(tiny_build, "README.md").decode()
    meta = front_matter(card)
    manifest = json.loads(_read(tiny_build, "manifest.json"))
    assert {"distillation", "edgepack"} <= set(meta["tags"])
    assert meta["pipeline_tag"] == "image-classification" and meta["datasets"] == ["builtin:digits"]
    assert meta["license"] == "other" and meta["license_name"] == "unknown"  # no data license given
    (result,) = meta["model-index"][0]["results"]
    accuracy = next(m for m in result["metrics"] if m["type"] == "accuracy")
    assert accuracy["value"] == pytest.approx(manifest["metrics"]["student_int8"]["accuracy"])
    assert "## Distillation" in card and "builtin:digits-cnn" in card


def test_bom_cdx_json_is_a_valid_cyclonedx_1_6_ml_bom(tiny_build):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = _read(tiny_build, "bom.cdx.json").decode()
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    assert validator.validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6"
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model" and model["name"] == "digits-tiny"
    model_sha = hashlib.sha256(_read(tiny_build, "model.onnx")).hexdigest()
    assert model["hashes"] == [{"alg": "SHA-256", "content": model_sha}]
    roles = {a["bom-ref"] for a in model["pedigree"]["ancestors"]}
    assert roles == {"teacher", "student-init"}
    assert model["modelCard"]["modelParameters"]["datasets"] == [{"ref": "data-0"}]
    (data,) = bom["components"]
    assert data["type"] == "data" and data["data"][0]["type"] == "dataset"
    # The validator is strict: a field CycloneDX does not define is refused.
    model["modelCard"]["invented"] = 1
    assert validator.validate_str(json.dumps(bom)) is not None


def test_a_recipe_data_license_reaches_the_card_and_the_bom(tmp_path, cache_dir):
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    recipe = tiny_recipe(
        package={"out_dir": str(tmp_path)}, provenance={"data": {"license": "cc-by-4.0"}}
    )
    result = build(recipe, cache_dir=cache_dir, reporter=SilentReporter())
    assert set(result.ran) <= {"provenance", "package"}  # nothing is retrained for it
    card = front_matter(_read(result, "README.md").decode())
    assert card["license"] == "cc-by-4.0"
    bom = json.loads(_read(result, "bom.cdx.json"))
    assert bom["components"][0]["licenses"] == [
        {"license": {"id": "CC-BY-4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}}
    ]

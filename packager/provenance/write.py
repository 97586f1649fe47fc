"""The provenance files of a package tree: the lineage in model.onnx's metadata_props, the
model card (README.md) and the ML-BOM (bom.cdx.json), written by the package stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packager.errors import StageError

BOM_FILE = "bom.cdx.json"
CARD_FILE = "README.md"


def stamp_model(model: Path, manifest: dict[str, Any], producer_version: str) -> dict[str, str]:
    """Write the lineage into the shipped model's metadata_props; returns what was written."""
    from packager.provenance.onnx_meta import lineage_props, write

    props = lineage_props(manifest, f"edgepack {producer_version}")
    write(model, props)
    return props


def write_card_and_bom(
    tree: Path, manifest: dict[str, Any], report: dict[str, Any], producer_version: str
) -> None:
    """README.md and bom.cdx.json; a BOM CycloneDX's own validator refuses fails the stage."""
    from packager.hashing import sha256_file
    from packager.provenance.bom import bom_json, validation_error
    from packager.provenance.card import model_card

    (tree / CARD_FILE).write_text(model_card(manifest, report), encoding="utf-8")
    doc = bom_json(manifest, sha256_file(tree / manifest["model"]), producer_version)
    error = validation_error(doc)
    if error is not None:
        raise StageError("package", f"{BOM_FILE} is not valid CycloneDX 1.6: {error}")
    (tree / BOM_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

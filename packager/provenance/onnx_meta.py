"""Lineage in an ONNX model's own `metadata_props`, so that a model file taken out of its
package still says where it came from. Passes that rewrite a model (quantizers, optimizers) may
drop them: `carry` re-applies what the input had.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PREFIX = "edgepack."


def read(path: Path) -> dict[str, str]:
    """Every metadata_props entry of the model at `path` (weights are not loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def write(path: Path, props: dict[str, str]) -> None:
    """Set `props` on the model at `path` in place (other entries are kept)."""
    import onnx

    model = onnx.load(str(path))
    current = {p.key: p.value for p in model.metadata_props}
    current.update(props)
    del model.metadata_props[:]
    for key, value in current.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def carry(src: Path, dst: Path) -> list[str]:
    """Re-apply to `dst` the metadata_props of `src` that a pass dropped or changed; returns the
    keys written (the file is rewritten only when one is missing)."""
    want, have = read(src), read(dst)
    missing = {k: v for k, v in want.items() if have.get(k) != v}
    if missing:
        write(dst, missing)
    return sorted(missing)


def lineage_props(manifest: dict[str, Any], producer: str) -> dict[str, str]:
    """The entries a shipped model carries: producer, package name and version, the teacher
    (source, hub id, content id), its license and terms, what was accepted, and a compact
    lineage (teacher -> student -> quantized) as JSON."""
    from packager.provenance.card import package_license

    prov = manifest["provenance"]
    teacher = prov["teacher"]
    quant = manifest.get("quantization") or {}
    props = {
        "producer": producer,
        "package": manifest["name"],
        "package_version": manifest["version"],
        "teacher": teacher.get("hub_id") or teacher["source"],
        "teacher_id": teacher.get("id") or "",
        "license": package_license(prov)[0],
        "teacher_license": teacher["license"]["id"],
        "terms": teacher["terms"]["id"],
        "accepted_terms": ",".join(a["terms"] for a in prov.get("accepted", [])),
        "lineage": json.dumps(
            {
                "teacher": teacher["source"],
                "student_init": prov["student_init"]["how"],
                "quantized": quant.get("mode", "none"),
            },
            separators=(",", ":"),
        ),
    }
    return {PREFIX + k: v for k, v in props.items()}

"""`bom.cdx.json`: a CycloneDX 1.6 ML-BOM of the package, made with cyclonedx-python-lib.

The model is a `machine-learning-model` component with the shipped file's hashes, the teacher's
license, and the teacher and the student's starting point as pedigree ancestors; every data
source is a `data` component. cyclonedx-python-lib (11.x) has no classes yet for a component's
`modelCard` and `data` fields (its issues #912 and #913), so those two are added to the JSON it
writes, and the whole document is then checked by the library's own strict 1.6 validator.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from packager.provenance.licenses import lookup

MODEL_REF = "model"


def _license(record: dict[str, Any] | None, terms_name: str | None = None):
    """A CycloneDX license: an SPDX id when the id is one, else the terms' name and link."""
    from cyclonedx.model import XsUri
    from cyclonedx.model.license import DisjunctiveLicense
    from cyclonedx.spdx import fixup_id

    if not record or record.get("id") in (None, "unknown", "other", "edgepack-builtin"):
        return []
    spdx = fixup_id(record["id"])
    link = record.get("link") or ""
    url = XsUri(link) if link.startswith(("http://", "https://")) else None
    if spdx:
        return [DisjunctiveLicense(id=spdx, url=url)]
    return [DisjunctiveLicense(name=terms_name or record["id"], url=url)]


def _hashes(files: list[dict[str, Any]]):
    from cyclonedx.model import HashAlgorithm, HashType

    return [
        HashType(alg=HashAlgorithm.SHA_256, content=f["sha256"]) for f in files if f.get("sha256")
    ]


def _ancestors(prov: dict[str, Any]):
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    t, init = prov["teacher"], prov["student_init"]
    teacher = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=t.get("hub_id") or t["source"],
        bom_ref="teacher",
        description=_teacher_description(t),
        hashes=_hashes(t.get("weights") or []),
        licenses=_license(t["license"], t["terms"]["name"]),
        properties=[
            Property(name="edgepack:role", value="teacher"),
            Property(name="edgepack:terms", value=t["terms"]["id"]),
            Property(name="edgepack:content_id", value=t.get("id") or ""),
            *_endpoint_properties(t),
        ],
    )
    start = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=f"student-init ({init['kind']})",
        bom_ref="student-init",
        description=init["how"],
        properties=[Property(name="edgepack:role", value="student-init")],
    )
    return [teacher, start]


def _teacher_description(t: dict[str, Any]) -> str:
    e = t.get("endpoint")
    if not e:
        return f"the teacher (source {t['source']}); terms: {t['terms']['name']}"
    return (
        f"the teacher, only called: the student learned from the outputs of model {e['model']} "
        f"through the endpoint {e['base_url']}; terms: {t['terms']['name']}"
    )


def _endpoint_properties(t: dict[str, Any]) -> list:
    from cyclonedx.model import Property

    e, c = t.get("endpoint"), t.get("calls") or {}
    if not e:
        return []
    values = {
        "edgepack:learned_from": "outputs",
        "edgepack:endpoint": e["base_url"],
        "edgepack:endpoint_host": e["host"],
        "edgepack:model": e["model"],
        "edgepack:served_models": ",".join(e.get("served_models") or []),
        "edgepack:calls": str(c.get("calls", 0)),
        "edgepack:cached_answers": str(c.get("cached", 0)),
        "edgepack:first_call": c.get("first_call") or "",
        "edgepack:last_call": c.get("last_call") or "",
    }
    return [Property(name=k, value=v) for k, v in values.items()]


def _data_components(prov: dict[str, Any]):
    from cyclonedx.model.component import Component, ComponentType

    return [
        Component(
            type=ComponentType.DATA,
            name=d.get("hub_id") or d["source"],
            bom_ref=f"data-{i}",
            hashes=_hashes([d]),
            licenses=_license(d.get("license"), (d.get("license") or {}).get("name")),
        )
        for i, d in enumerate(prov["data"])
    ]


def _bom(manifest: dict[str, Any], model_sha256: str, producer_version: str):
    from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType, Pedigree

    from packager.provenance.card import package_license

    prov = manifest["provenance"]
    links = {prov["teacher"]["license"].get("link") or ""}
    license_id, _ = package_license(prov)
    terms = lookup(license_id)
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=manifest["name"],
        version=manifest["version"],
        bom_ref=MODEL_REF,
        description=manifest.get("description") or None,
        hashes=_hashes([{"sha256": model_sha256}]),
        licenses=_license(
            {"id": license_id, "link": terms.link if terms else None},
            terms.name if terms else None,
        ),
        pedigree=Pedigree(ancestors=_ancestors(prov), notes="distilled by edgepack"),
        external_references=[
            ExternalReference(type=ExternalReferenceType.LICENSE, url=XsUri(u))
            for u in sorted(links)
            if u.startswith(("http://", "https://"))
        ],
        properties=[
            Property(name="edgepack:task", value=manifest["task"]),
            Property(name="edgepack:policy", value=prov["policy"]),
            *[Property(name="edgepack:accepted", value=a["terms"]) for a in prov["accepted"]],
        ],
    )
    bom = Bom(
        components=_data_components(prov),
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"edgepack:{manifest['name']}:{model_sha256}"),
    )
    bom.metadata.component = model
    bom.register_dependency(model, list(bom.components))  # the model depends on its data
    bom.metadata.timestamp = datetime.fromisoformat(manifest["created"].replace("Z", "+00:00"))
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="edgepack", version=producer_version)
    )
    return bom


def _model_card(manifest: dict[str, Any]) -> dict[str, Any]:
    """CycloneDX's `modelCard` of the model: approach, task, architecture, datasets (refs to the
    data components), inputs and outputs, and the measured metrics."""
    prov, metrics = manifest["provenance"], manifest["metrics"]
    shipped = metrics.get(metrics.get("shipped", ""), {})
    fmt = lambda t: f"{t['dtype']} {t['shape']}"  # noqa: E731
    return {
        "bom-ref": "model-card",
        "modelParameters": {
            "approach": {"type": "supervised"},  # the teacher's outputs are the targets
            "task": manifest["task"],
            "architectureFamily": str(prov["student_init"].get("arch") or "unknown"),
            "modelArchitecture": f"distilled student; init: {prov['student_init']['how']}",
            "datasets": [{"ref": f"data-{i}"} for i in range(len(prov["data"]))],
            "inputs": [{"format": fmt(t)} for t in manifest["inputs"]],
            "outputs": [{"format": fmt(t)} for t in manifest["outputs"]],
        },
        "quantitativeAnalysis": {
            "performanceMetrics": [
                {"type": k, "value": f"{v:.6g}", "slice": str(metrics.get("dataset", ""))}
                for k, v in shipped.items()
                if isinstance(v, int | float)
            ]
        },
        "considerations": {
            "useCases": [manifest.get("description") or manifest["task"]],
            "technicalLimitations": [
                f"teacher terms ({prov['teacher']['terms']['name']}): "
                f"{prov['teacher']['terms']['clause']}"
            ],
        },
    }


def bom_json(manifest: dict[str, Any], model_sha256: str, producer_version: str) -> dict[str, Any]:
    """The BOM as a JSON document (CycloneDX 1.6), modelCard and data fields included."""
    from cyclonedx.output.json import JsonV1Dot6

    doc = json.loads(JsonV1Dot6(_bom(manifest, model_sha256, producer_version)).output_as_string())
    doc["metadata"]["component"]["modelCard"] = _model_card(manifest)
    by_ref = {c.get("bom-ref"): c for c in doc.get("components", [])}
    for i, d in enumerate(manifest["provenance"]["data"]):
        by_ref[f"data-{i}"]["data"] = [
            {
                "type": "dataset",
                "name": d["source"],
                "description": ", ".join(f"{k} {v} rows" for k, v in (d.get("rows") or {}).items())
                + f"; generated by {d.get('generated_by') or 'none (given data)'}",
            }
        ]
    return doc


def validation_error(doc: dict[str, Any]) -> str | None:
    """cyclonedx-python-lib's strict CycloneDX 1.6 JSON validator on `doc` (None: valid)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    return None if error is None else str(error).splitlines()[0]

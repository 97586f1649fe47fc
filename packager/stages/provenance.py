"""provenance: describe the teacher and the data as given, and apply the gate on what may be
distilled, before anything is trained.

The teacher's license and terms come from its own files (packager.provenance.detect), their
meaning and duties from the table (packager.provenance.licenses). `provenance.policy: strict`
stops the build here, with one line and exit code 2, until `--accept-terms ID` names the terms;
`warn` warns. The policy, the accepted ids and the content of every file read are in this
step's key, so the outcome is never stale; the time an acceptance is recorded at is written
when the step runs and is in no key (a cached rebuild keeps the first time).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packager.artifact import Output
from packager.config import ProvenanceStepConfig
from packager.errors import RecipeError
from packager.stage import StageContext, register_stage


def _teacher(cfg: ProvenanceStepConfig):
    """The teacher's own account of itself (packager.sources.teacher): its files, or for an
    API teacher its endpoint and model, read without any network access."""
    from packager.sources.teacher import teacher_of

    return teacher_of(cfg.source_teacher).describe(cfg.teacher.license, cfg.teacher.id)


def _data(cfg: ProvenanceStepConfig) -> list[dict[str, Any]]:
    from packager.provenance.detect import describe_data

    d = cfg.source_data
    path = None if d.source.startswith("builtin:") else Path(d.source)
    out = [describe_data(d.source, path, cfg.data.license, cfg.data.id)]
    if d.labels_file:
        out.append(describe_data(d.labels_file, Path(d.labels_file), cfg.data.license, None))
    return out


def _copy_license_files(teacher: dict[str, Any], workdir: Path) -> list[str]:
    """The teacher's LICENSE / USE_POLICY files, kept so that the package can ship them."""
    import shutil

    folder, names = teacher.get("resolved"), teacher.get("license_files") or []
    if not folder or not names:
        return []
    (workdir / LICENSES_DIR).mkdir()
    for name in names:
        shutil.copyfile(Path(folder) / name, workdir / LICENSES_DIR / name)
    return names


LICENSES_DIR = "teacher-licenses"


def _duties(cfg: ProvenanceStepConfig, terms, name: str, copied: list[str]) -> list[dict]:
    """Each duty of the terms: applied here (the package name, the card's attribution line, the
    teacher's license files shipped), or reported as the publisher's to do."""
    out = []
    if copied:
        shipped = ", ".join(f"licenses/teacher/{n}" for n in copied)
        out.append({"status": "applied", "duty": f"the teacher's license files ship as {shipped}"})
    if terms.naming and name != cfg.name:
        out.append(
            {
                "status": "applied",
                "duty": f'the package is named {name}: {terms.name} asks for "{terms.naming}" '
                "at the beginning of the model's name",
            }
        )
    elif terms.naming and cfg.naming == "report":
        out.append(
            {
                "status": "reported",
                "duty": f'{terms.name} asks for "{terms.naming}" at the beginning of the model\'s '
                f"name; provenance.naming = report kept {cfg.name}: rename it before you "
                "distribute it",
            }
        )
    if terms.attribution:
        out.append({"status": "applied", "duty": f'the model card shows "{terms.attribution}"'})
    for duty in terms.obliges:
        out.append({"status": "yours", "duty": duty})
    return out


@register_stage(ProvenanceStepConfig, name="provenance", version=2)
def provenance(_inp: None, cfg: ProvenanceStepConfig, ctx: StageContext) -> Output:
    from packager.provenance import licenses as L

    teacher, terms = _teacher(cfg)
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    gate = L.assess(terms, cfg.policy, cfg.accept_terms, cfg.source_teacher.source, at)
    if gate.blocked:
        raise RecipeError(gate.blocked)
    for w in gate.warnings:
        ctx.warn(w)
    name = L.package_name(cfg.name, terms) if cfg.naming == "apply" else cfg.name
    copied = _copy_license_files(teacher, ctx.workdir)
    duties = _duties(cfg, terms, name, copied)
    for d in duties:
        if d["status"] == "reported":
            ctx.warn(d["duty"])
            gate.warnings.append(d["duty"])
    for note in teacher["notes"]:
        ctx.log(note)
    shown = f"; accepted {', '.join(a['flag'] for a in gate.accepted)}" if gate.accepted else ""
    ctx.log(f"teacher {teacher['source']}: {terms.id} ({terms.category}){shown}")
    record = {
        "file": "provenance.json",
        "teacher": teacher,
        "data": _data(cfg),
        "gate": gate.to_json(),
        "package_name": name,
        "duties": duties,
        "license_files": [f"{LICENSES_DIR}/{n}" for n in copied],
    }
    (ctx.workdir / "provenance.json").write_text(json.dumps(record, indent=2))
    return Output("provenance", record)

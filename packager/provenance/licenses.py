"""The license and terms table (licenses.yaml: data, not code) and the gate on what may be
distilled. Informational: it says what a teacher's terms oblige and where to read them, it is
not legal advice.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import yaml

UNKNOWN = "unknown"
BUILTIN = "edgepack-builtin"


@dataclass(frozen=True)
class Terms:
    """One entry of licenses.yaml."""

    id: str
    name: str
    category: str
    gate: bool
    clause: str
    link: str
    obliges: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()
    naming: str | None = None
    attribution: str | None = None
    hosts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for internal in ("aliases", "signatures", "hosts", "models"):
            out.pop(internal)
        out["obliges"] = list(self.obliges)
        return out


@functools.cache
def table() -> dict[str, Terms]:
    """Every entry of licenses.yaml by id, in the file's order."""
    text = resources.files("packager.provenance").joinpath("licenses.yaml").read_text("utf-8")
    out = {}
    for entry in yaml.safe_load(text)["licenses"]:
        for key in ("obliges", "aliases", "signatures", "hosts", "models"):
            entry[key] = tuple(entry.get(key) or ())
        out[entry["id"]] = Terms(**entry)
    return out


def _norm(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip().lower())


def lookup(value: str | None) -> Terms | None:
    """The entry whose id or alias is `value` (a card's license id, a license_name, an SPDX id
    or a PyPI classifier); None when the table does not know it."""
    if not value:
        return None
    key = _norm(value)
    for terms in table().values():
        if key == terms.id or key in terms.aliases:
            return terms
    return None


def match_text(text: str) -> Terms | None:
    """The entry one of whose signatures appears in a LICENSE / USE_POLICY file's text."""
    body = _norm(text)
    for terms in table().values():
        if any(sig in body for sig in terms.signatures):
            return terms
    return None


def for_endpoint(host: str, model: str) -> tuple[Terms, str] | None:
    """(the terms governing an API teacher, what matched): its host (e.g. api.openai.com), else
    its model id wherever it is served (gpt-4o-mini behind a proxy is still OpenAI's); None
    when neither is known."""
    from fnmatch import fnmatchcase

    name = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
    for terms in table().values():
        if any(fnmatchcase(name, pattern) for pattern in terms.hosts):
            return terms, f"endpoint host {name}"
    said = model.lower()
    for terms in table().values():
        if any(fnmatchcase(said, pattern) for pattern in terms.models):
            return terms, f"model id {model}"
    return None


def get(terms_id: str) -> Terms:
    return table()[terms_id]


@dataclass
class Gate:
    """What the gate decided: warnings to show, the acceptances that apply, or why it stops."""

    policy: str
    terms: str
    outcome: str  # "quiet" | "warned" | "accepted" | "blocked"
    warnings: list[str] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    blocked: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "blocked"}


def _matches(accepted: str, terms: Terms) -> bool:
    return accepted == terms.id or accepted in terms.aliases


def assess(terms: Terms, policy: str, accepted: tuple[str, ...], teacher: str, at: str) -> Gate:
    """Apply `provenance.policy` to the teacher's terms. Gated terms (restrictions on outputs or
    use, non-commercial, naming duties, unknown) warn under `warn` and block under `strict`
    until `--accept-terms ID` names them; `at` is when an acceptance is recorded."""
    gate = Gate(policy, terms.id, "quiet")
    for given in accepted:
        if not _matches(given, terms):
            gate.warnings.append(
                f"--accept-terms {given} does not apply: teacher {teacher} is under "
                f"{terms.name} ({terms.id})"
            )
    if not terms.gate:
        return gate
    taken = [a for a in accepted if _matches(a, terms)]
    if taken:
        gate.outcome = "accepted"
        gate.accepted = [
            {"terms": terms.id, "name": terms.name, "flag": f"--accept-terms {a}", "at": at}
            for a in taken
        ]
        return gate
    what = (
        f"license unknown: {terms.clause}"
        if terms.id == UNKNOWN
        else f"{terms.name} ({terms.id}): {terms.clause}"
    )
    if policy == "strict":
        gate.outcome = "blocked"
        gate.blocked = (
            f"provenance.policy strict: teacher {teacher}: {what}; read {terms.link}, then "
            f"build again with --accept-terms {terms.id}"
        )
        return gate
    gate.outcome = "warned"
    gate.warnings.insert(
        0,
        f"teacher {teacher}: {what} (see {terms.link}; accept with --accept-terms {terms.id}, "
        "or set provenance.policy: strict to stop such builds; not legal advice)",
    )
    return gate


def package_name(name: str, terms: Terms) -> str:
    """`name` with the terms' naming prefix in front (Llama 3.1+: "Llama"), unless it already
    starts with it: package names take no spaces, so "Llama 3" becomes "Llama-3-"."""
    if not terms.naming:
        return name
    prefix = re.sub(r"\s+", "-", terms.naming.strip())
    squashed = re.sub(r"[-_. ]", "", name.lower())
    if squashed.startswith(re.sub(r"[-_. ]", "", prefix.lower())):
        return name
    return f"{prefix}-{name}"

"""What a teacher's and the data's own files say about them: the license and terms (model card
front matter, LICENSE / USE_POLICY files, the PyPI metadata of an `hf:pkg:` teacher), the
revision (a git commit, a Hub commit hash), the base model, and the sha256 of every weight file.

Plain arguments in (the source string, the folder or file it resolves to), plain JSON out.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

from packager.hashing import content_id, sha256_file, tree_files
from packager.provenance import licenses as L
from packager.provenance.card import read_front_matter

WEIGHT_SUFFIXES = {
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".gguf", ".h5", ".msgpack",
    ".tflite", ".npz",
}  # fmt: skip
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "USE_POLICY.md", "NOTICE")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
# Sources edgepack ships itself, and the file inside an installed package that holds each.
BUILTIN_DATA = {
    "builtin:digits": (
        "sklearn.datasets",
        "data/digits.csv.gz",
        "UCI ML hand-written digits (8x8), the copy shipped in scikit-learn",
    )
}


def _git_commit(folder: Path) -> str | None:
    """HEAD's commit of a git checkout, read from .git without running git."""
    git = folder / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head if _HEX40.match(head) else None
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0]
    except OSError:
        return None
    return None


def revision_of(folder: Path) -> dict[str, str] | None:
    """The revision a model folder carries: a git commit, the Hub commit of a hub cache
    snapshot (`.../snapshots/<commit>/`) or of `huggingface-cli download --local-dir`
    (`.cache/huggingface/download/*.metadata`, whose first line is the commit)."""
    commit = _git_commit(folder)
    if commit:
        return {"kind": "git", "commit": commit}
    parts = folder.resolve().parts
    if len(parts) > 2 and parts[-2] == "snapshots" and _HEX40.match(parts[-1]):
        repo = parts[-3].removeprefix("models--").replace("--", "/")
        return {"kind": "hub-cache", "commit": parts[-1], "repo": repo}
    meta = folder / ".cache" / "huggingface" / "download"
    for f in sorted(meta.glob("*.metadata")) if meta.is_dir() else []:
        first = f.read_text(errors="replace").splitlines()[:1]
        if first and _HEX40.match(first[0].strip()):
            return {"kind": "hub-download", "commit": first[0].strip()}
    return None


def weight_files(folder: Path) -> list[dict[str, Any]]:
    """sha256 and size of every weight file in a model folder (git and hub metadata skipped)."""
    out = []
    for p in tree_files(folder, skip=(".git", ".cache")):
        if p.suffix in WEIGHT_SUFFIXES:
            rel = p.relative_to(folder).as_posix()
            out.append({"file": rel, "sha256": sha256_file(p), "size": p.stat().st_size})
    return out


def package_of(module: str) -> dict[str, Any] | None:
    """Name, version and license of the installed distribution that provides `module`."""
    names = metadata.packages_distributions().get(module) or []
    if not names:
        return None
    meta = metadata.metadata(names[0])
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    license_ = meta.get("License-Expression") or meta.get("License") or None
    if license_ and license_.strip().upper() == "UNKNOWN":  # setuptools' "none was given"
        license_ = None
    return {
        "name": meta["Name"],
        "version": meta["Version"],
        "license": license_ or (classifiers[0] if classifiers else None),
        "classifiers": classifiers,
    }


def _evidence(folder: Path | None, package: dict | None, declared: str | None) -> list[dict]:
    """Every statement of a license, strongest first: the card's front matter, a license
    file's text, the package metadata, then what the recipe declares."""
    found: list[dict[str, Any]] = []
    card = read_front_matter(folder / "README.md") if folder else {}
    value = card.get("license_name") if card.get("license") == "other" else card.get("license")
    if value:
        found.append({"from": "README.md front matter", "license": str(value)})
    for name in LICENSE_FILES if folder else ():
        path = folder / name
        if path.is_file():
            terms = L.match_text(path.read_text(errors="replace")[:200_000])
            if terms:
                found.append({"from": name, "license": terms.id})
    if package and package["license"]:
        found.append({"from": f"PyPI metadata of {package['name']}", "license": package["license"]})
    if declared:
        found.append({"from": "recipe provenance.teacher.license", "license": declared})
    return found


def _chosen(evidence: list[dict], link: str | None) -> tuple[dict[str, Any], L.Terms]:
    for item in evidence:
        terms = L.lookup(item["license"])
        if terms is not None:
            record = {"id": item["license"].lower(), "from": item["from"]}
            return record | {"link": link or terms.link}, terms
    terms = L.get(L.UNKNOWN)
    raw = evidence[0]["license"] if evidence else None
    return {"id": raw or L.UNKNOWN, "from": evidence[0]["from"] if evidence else None}, terms


def _notes(evidence: list[dict], used: str | None, terms: L.Terms) -> list[str]:
    """Statements that disagree with the one used (e.g. a wrapper package's own license)."""
    notes = []
    for e in evidence:
        said = L.lookup(e["license"])
        if e["from"] == used:
            continue
        if said is None or said.id != terms.id:
            notes.append(f"{e['from']} says {e['license']}; {terms.id} is used")
    return notes


def _teacher_record(
    source, kind, resolved, package, revision, files, license_, terms, card, evidence, hub_id
) -> dict[str, Any]:
    return {
        "source": source,
        "kind": kind,
        "resolved": resolved,
        "package": package,
        "revision": revision,
        "weights": files,
        "license": license_,
        "terms": terms.to_json(),
        "base_model": card.get("base_model"),
        "datasets": card.get("datasets"),
        "hub_id": hub_id or (revision or {}).get("repo"),
        "license_files": [],
        "evidence": evidence,
        "notes": _notes(evidence, license_["from"], terms),
    }


def describe_teacher(
    source: str,
    kind: str,
    folder: Path | None = None,
    weights: Path | None = None,
    module: str | None = None,
    declared: str | None = None,
    hub_id: str | None = None,
) -> tuple[dict[str, Any], L.Terms]:
    """(the manifest's `provenance.teacher`, its terms). `kind`: the source's scheme (builtin,
    python, hf); `folder`: an hf: teacher's folder; `weights`: a weights file; `module`: the
    package an hf:pkg: folder or pkg: weights file ships in."""
    if kind == "builtin" and weights is None:  # trained here: no files of its own
        terms = L.get(L.BUILTIN)
        record = {"id": L.BUILTIN, "from": "trained in this build", "link": terms.link}
        return _teacher_record(
            source, "builtin", None, None, None, [], record, terms, {}, [], hub_id
        ), terms
    package = package_of(module) if module else None
    card = read_front_matter(folder / "README.md") if folder else {}
    evidence = _evidence(folder, package, declared)
    license_, terms = _chosen(evidence, card.get("license_link"))
    revision = revision_of(folder) if folder else None
    if revision is None and package:
        revision = {"kind": "python-package", "version": f"{package['name']}=={package['version']}"}
    files = weight_files(folder) if folder else []
    if weights is not None and weights.is_file():
        files = [
            {"file": str(weights), "sha256": sha256_file(weights), "size": weights.stat().st_size}
        ]
    resolved = str(folder or weights or "") or None
    out = _teacher_record(
        source, kind, resolved, package, revision, files, license_, terms, card, evidence, hub_id
    )
    out["license_files"] = [n for n in LICENSE_FILES if folder and (folder / n).is_file()]
    return out, terms


def describe_endpoint(
    source: str, model: str, api: dict[str, Any], declared: str | None, hub_id: str | None
) -> tuple[dict[str, Any], L.Terms]:
    """An API teacher (a model you only call): the endpoint's host and URL (never a key: none
    is in a base_url, the config refuses it), the model asked for, and the terms found by the
    host, then the model id (licenses.for_endpoint), then what the recipe declares; unknown
    otherwise. Read from the recipe alone: no request is sent."""
    from urllib.parse import urlsplit

    host = urlsplit(api["base_url"]).netloc
    evidence: list[dict[str, Any]] = []
    found = L.for_endpoint(host, model)
    if found is not None:
        evidence.append({"from": found[1], "license": found[0].id})
    if declared:
        evidence.append({"from": "recipe provenance.teacher.license", "license": declared})
    license_, terms = _chosen(evidence, None)
    endpoint = {"host": host, "base_url": api["base_url"], "endpoint": api.get("endpoint")}
    endpoint |= {"model": model, "api_key_env": api.get("api_key_env")}
    out = _teacher_record(
        source, "api", None, None, None, [], license_, terms, {}, evidence, hub_id
    )
    out["endpoint"] = endpoint  # the served model id, the calls and their dates: the package's
    return out, terms


def describe_data(
    source: str, path: Path | None, license_id: str | None, hub_id: str | None
) -> dict[str, Any]:
    """One entry of `provenance.data`: the source as given, what it resolves to, its sha256
    (a folder's content id), its license when the recipe gives it."""
    out: dict[str, Any] = {"source": source, "hub_id": hub_id, "generated_by": None}
    if source in BUILTIN_DATA:
        from importlib import resources

        package, name, what = BUILTIN_DATA[source]
        file = Path(str(resources.files(package).joinpath(name)))
        out |= {"kind": "builtin", "description": what, "path": f"{package}/{name}"}
        out["sha256"] = sha256_file(file) if file.is_file() else None
    elif path is not None and path.is_dir():
        out |= {"kind": "folder", "path": str(path), "sha256": content_id(path)}
    elif path is not None and path.is_file():
        out |= {"kind": "file", "path": str(path), "sha256": sha256_file(path)}
    terms = L.lookup(license_id)
    out["license"] = (
        {
            "id": license_id,
            "name": terms.name if terms else None,
            "link": terms.link if terms else None,
        }
        if license_id
        else None
    )
    return out

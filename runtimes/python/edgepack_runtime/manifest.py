"""The manifest contract (docs/package-format.md, schema 1.x): what a reader checks, in order.

1. manifest.json parses as a JSON object;
2. its schema_version has a major this runtime knows (checked before any other field, so a
   2.0 package gets "upgrade the runtime", not a confusing complaint about a renamed field);
3. the fields the runtime reads are present and well typed;
4. every listed file has its recorded size and sha256, and no file is unlisted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._source import MANIFEST, Source, check_member_name
from ._version import __version__
from .errors import IntegrityError, InvalidPackageError, SchemaVersionError

SCHEMA_VERSION = "1.0"
SUPPORTED_MAJOR = 1
# Present in a package but never listed under "files": they describe the listing itself.
UNLISTED = frozenset({MANIFEST, "manifest.sig"})
# A manifest is a few KB; refuse to parse a huge one rather than exhaust a small device's memory.
_MAX_MANIFEST_BYTES = 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


def read_manifest(source: Source) -> dict[str, Any]:
    """Parse, version-check and validate manifest.json (steps 1-3)."""
    if MANIFEST not in source.names():
        nested = sorted(n for n in source.names() if n.endswith("/" + MANIFEST))
        hint = (
            f" (found {nested[0]}: package the folder's contents, not the folder)" if nested else ""
        )
        raise InvalidPackageError(f"{source.label}: no {MANIFEST} at the package root{hint}")
    if source.size(MANIFEST) > _MAX_MANIFEST_BYTES:
        raise InvalidPackageError(f"{MANIFEST}: larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(source.read(MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPackageError(f"{MANIFEST}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise InvalidPackageError(f"{MANIFEST}: expected a JSON object at the top level")
    check_schema_version(manifest.get("schema_version"))
    validate(manifest)
    return manifest


def check_schema_version(version: object) -> None:
    """Raise SchemaVersionError for an unknown major; InvalidPackageError if malformed."""
    if version is None:
        raise InvalidPackageError(f"{MANIFEST}: missing required field 'schema_version'")
    match = re.fullmatch(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    if match is None:
        raise InvalidPackageError(
            f"{MANIFEST}: schema_version must be a 'MAJOR.MINOR' string, got {version!r}"
        )
    if int(match.group(1)) != SUPPORTED_MAJOR:
        raise SchemaVersionError(
            f"schema_version {version} is not supported by edgepack-runtime {__version__} "
            f"(supports {SUPPORTED_MAJOR}.x)"
        )


def _require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise InvalidPackageError(f"{MANIFEST}: missing required field '{where}{key}'")
    value = obj[key]
    # bool is an int in Python; a size or shape of `true` is a packaging bug, not a number.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidPackageError(
            f"{MANIFEST}: field '{where}{key}' must be {names}, got {type(value).__name__}"
        )
    return value


def validate(manifest: dict[str, Any]) -> None:
    """Check the fields the runtime reads; the rest (lineage, metrics, ...) is informational."""
    for key in ("name", "version", "task", "model"):
        _require(manifest, key, str, "")
    for key in ("inputs", "outputs"):
        specs = _require(manifest, key, list, "")
        if not specs:
            raise InvalidPackageError(f"{MANIFEST}: '{key}' must list at least one tensor")
        for i, spec in enumerate(specs):
            where = f"{key}[{i}]."
            if not isinstance(spec, dict):
                raise InvalidPackageError(f"{MANIFEST}: '{key}[{i}]' must be an object")
            _require(spec, "name", str, where)
            _require(spec, "dtype", str, where)
            _require(spec, "shape", list, where)
    files = _require(manifest, "files", dict, "")
    for name, entry in files.items():
        check_member_name(name, MANIFEST)
        if not isinstance(entry, dict):
            raise InvalidPackageError(f"{MANIFEST}: 'files.{name}' must be an object")
        sha = _require(entry, "sha256", str, f"files.{name}.")
        if not _SHA256.fullmatch(sha):
            raise InvalidPackageError(f"{MANIFEST}: 'files.{name}.sha256' is not a sha256 hex")
        if _require(entry, "size", int, f"files.{name}.") < 0:
            raise InvalidPackageError(f"{MANIFEST}: 'files.{name}.size' is negative")
    for key in ("preprocessing", "postprocessing", "samples"):
        if key in manifest:
            _require(manifest, key, dict, "")
    for path in referenced_files(manifest):
        if path not in files:
            raise InvalidPackageError(f"{MANIFEST}: {path} is referenced but not listed in 'files'")
    samples = manifest.get("samples")
    if samples is not None:
        _require(samples, "outputs", dict, "samples.")
        if "raw" in samples:
            _require(samples, "raw", str, "samples.")
        if "inputs" in samples:
            _require(samples, "inputs", dict, "samples.")
        _require(samples, "atol", (int, float), "samples.")
        _require(samples, "rtol", (int, float), "samples.")


def referenced_files(manifest: dict[str, Any]) -> list[str]:
    """The package files the runtime itself reads: the model, samples, a tokenizer."""
    paths = [manifest["model"]]
    samples = manifest.get("samples") or {}
    if isinstance(samples.get("raw"), str):
        paths.append(samples["raw"])
    for key in ("inputs", "outputs"):
        mapping = samples.get(key)
        if isinstance(mapping, dict):
            paths.extend(p for p in mapping.values() if isinstance(p, str))
    tokenizer = (manifest.get("preprocessing") or {}).get("tokenizer")
    if isinstance(tokenizer, str):
        paths.append(tokenizer)
    return paths


def verify_files(source: Source, manifest: dict[str, Any], keep: set[str]) -> dict[str, bytes]:
    """Check every file against the manifest (step 4); return the bytes of the `keep` files.

    Each file is read once: the bytes that are hashed are the bytes the runtime uses, so a file
    swapped between the check and the use cannot slip through.
    """
    files: dict[str, dict[str, Any]] = manifest["files"]
    present = source.names()
    unlisted = sorted(present - set(files) - UNLISTED)
    if unlisted:
        raise IntegrityError(
            f"{unlisted[0]}: present in the package but not listed in the manifest"
            + (f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else "")
        )
    kept: dict[str, bytes] = {}
    for name, entry in files.items():
        if name not in present:
            raise IntegrityError(f"{name}: listed in the manifest but missing from the package")
        # Size first: it is free, and it stops a zip bomb before a byte is inflated.
        size = source.size(name)
        if size != entry["size"]:
            raise IntegrityError(
                f"{name}: size mismatch (expected {entry['size']} bytes, got {size}): "
                "the package was modified after it was built"
            )
        digest, data = source.digest(name, keep=name in keep)
        if digest != entry["sha256"]:
            raise IntegrityError(
                f"{name}: sha256 mismatch (expected {entry['sha256'][:12]}…, got {digest[:12]}…): "
                "the package was modified after it was built"
            )
        if data is not None:
            kept[name] = data
    return kept

"""The manifest contract (docs/package-format.md, schema 1.x): what a reader checks, in order.

1. manifest.json parses as a JSON object;
2. its schema_version has a major this runtime knows (checked before any other field, so a
   2.0 package gets "upgrade the runtime", not a confusing complaint about a renamed field);
3. it matches the published schema (schema.py, runtimes/manifest.schema.json);
4. every listed file has its recorded size and sha256, and no file is unlisted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._source import MANIFEST, Source, check_member_name
from ._version import __version__
from .errors import IntegrityError, InvalidPackageError, SchemaVersionError
from .schema import check

SCHEMA_VERSION = "1.0"
SUPPORTED_MAJOR = 1
# Present in a package but never listed under "files": they describe the listing itself.
UNLISTED = frozenset({MANIFEST, "manifest.sig"})
# A manifest is a few KB; refuse to parse a huge one rather than exhaust a small device's memory.
MAX_MANIFEST_BYTES = 16 << 20


def read_manifest(source: Source) -> dict[str, Any]:
    """Parse, version-check and validate manifest.json (steps 1-3)."""
    if MANIFEST not in source.names():
        nested = sorted(n for n in source.names() if n.endswith("/" + MANIFEST))
        hint = (
            f" (found {nested[0]}: package the folder's contents, not the folder)" if nested else ""
        )
        raise InvalidPackageError(f"{source.label}: no {MANIFEST} at the package root{hint}")
    if source.size(MANIFEST) > MAX_MANIFEST_BYTES:
        raise InvalidPackageError(f"{MANIFEST}: larger than {MAX_MANIFEST_BYTES} bytes")
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


def validate(manifest: dict[str, Any]) -> None:
    """Check the manifest against the published schema (schema.MANIFEST_SCHEMA), then what a
    JSON Schema cannot say: safe file names, and every file the runtime reads being listed."""
    check(manifest)
    for name in manifest["files"]:
        check_member_name(name, MANIFEST)
    for path in referenced_files(manifest) + mobile_files(manifest):
        if path not in manifest["files"]:
            raise InvalidPackageError(f"{MANIFEST}: {path} is referenced but not listed in 'files'")


def mobile_files(manifest: dict[str, Any]) -> list[str]:
    """The ONNX Runtime Mobile artifacts the manifest names (checked, not read, by this runtime)."""
    mobile = manifest.get("mobile") or {}
    return [mobile[k] for k in ("model", "required_operators") if isinstance(mobile.get(k), str)]


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

"""The manifest contract (docs/package-format.md, schema 1.x): what a reader checks, in order.

1. manifest.json is at most MAX_MANIFEST_BYTES, nests at most MAX_JSON_DEPTH deep, and parses
   as a JSON object;
2. its schema_version has a major this runtime knows (checked before any other field, so a
   2.0 package gets "upgrade the runtime", not a confusing complaint about a renamed field);
3. it matches the published schema (schema.py, runtimes/manifest.schema.json), with safe file
   names and sizes within MAX_FILE_BYTES;
4. the package holds exactly the listed files, each with its recorded size (check_listing,
   before a byte of any of them is read); their sha256 are checked as they are read
   (reader.PackageReader).
"""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any

import numpy as np

from ._source import MANIFEST, Source, check_member_name, size_mismatch
from ._version import __version__
from .errors import IntegrityError, InvalidPackageError, SchemaVersionError
from .limits import MAX_FILE_BYTES, MAX_JSON_DEPTH, MAX_MANIFEST_BYTES
from .schema import check

# 1.1: the optional provenance block; 1.2: the optional generation block of language models;
# 1.3: image preprocessing and image samples (1.0, 1.1 and 1.2 packages read the same).
SCHEMA_VERSION = "1.3"
SUPPORTED_MAJOR = 1
# Present in a package but never listed under "files": they describe the listing itself.
UNLISTED = frozenset({MANIFEST, "manifest.sig"})

# The same words in the three runtimes: readers ignoring a BOM and readers refusing it would
# disagree on whether a package is valid, and edgepack never writes one.
_BOM_REFUSED = (
    "it starts with a UTF-8 byte order mark, which JSON text must not have (RFC 8259): "
    "write the file without one"
)
# A JSON string, escapes included (the unrolled form: no backtracking on long strings).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def json_depth(data: bytes) -> int:
    """How deep [ and { nest in JSON text, counted without parsing (strings skipped): numpy
    over the bytes, so even a 16 MiB document of "[" is measured in a fraction of a second."""
    codes = np.frombuffer(_JSON_STRING.sub(b"", data), np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    closes = (codes == ord("]")) | (codes == ord("}"))
    steps = opens.astype(np.int32) - closes  # int32: 16 MiB of "[" is far below 2**31
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


class _NotJson(ValueError):
    """What strict JSON refuses and Python's json module lets through (JS and C++ refuse it)."""


def _no_constant(name: str) -> None:
    raise _NotJson(f"{name} is not a JSON number")


def _out_of_range(text: str) -> _NotJson:
    shown = text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"
    return _NotJson(f"the number {shown} is out of range of a double")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _out_of_range(text)
    return value


def _finite_int(text: str) -> int:
    try:
        value = int(text)  # ValueError past Python's 4300-digit limit
        float(value)  # OverflowError past a double's range
    except (ValueError, OverflowError):
        raise _out_of_range(text) from None
    return value


def parse_json(data: bytes, where: str) -> Any:
    """Parse JSON from a package the way the JS and C++ runtimes do, so all three accept the same
    files: nesting past MAX_JSON_DEPTH is refused before the parser sees it (Python's json
    recurses, and a RecursionError is not an answer an app can act on); so are a UTF-8 byte
    order mark, NaN and Infinity, and numbers beyond a double (1e999: a tolerance of infinity)."""
    if json_depth(data) > MAX_JSON_DEPTH:
        raise InvalidPackageError(
            f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels (edgepack writes at most "
            "a few): refusing to parse it"
        )
    if data.startswith(codecs.BOM_UTF8):
        raise InvalidPackageError(f"{where}: not valid JSON ({_BOM_REFUSED})")
    try:
        return json.loads(
            data.decode("utf-8"),
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_finite_int,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError, _NotJson
        raise InvalidPackageError(f"{where}: not valid JSON ({exc})") from exc


def read_manifest_bytes(source: Source) -> bytes:
    """manifest.json's bytes, refused unread when its recorded size is over the cap."""
    if MANIFEST not in source.names():
        nested = sorted(n for n in source.names() if n.endswith("/" + MANIFEST))
        hint = (
            f" (found {nested[0]}: package the folder's contents, not the folder)" if nested else ""
        )
        raise InvalidPackageError(f"{source.label}: no {MANIFEST} at the package root{hint}")
    size = source.size(MANIFEST)
    if size > MAX_MANIFEST_BYTES:
        raise InvalidPackageError(
            f"{MANIFEST}: {size} bytes, larger than the {MAX_MANIFEST_BYTES >> 20} MiB cap "
            "for a manifest (a manifest is a few KB)"
        )
    return source.read(MANIFEST, size)


def parse_manifest(data: bytes) -> dict[str, Any]:
    """Parse, version-check and validate manifest.json's bytes (steps 1-3)."""
    manifest = parse_json(data, MANIFEST)
    if not isinstance(manifest, dict):
        raise InvalidPackageError(f"{MANIFEST}: expected a JSON object at the top level")
    check_schema_version(manifest.get("schema_version"))
    validate(manifest)
    return manifest


def read_manifest(source: Source) -> dict[str, Any]:
    """Steps 1-3 on a package's own manifest.json."""
    return parse_manifest(read_manifest_bytes(source))


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
    JSON Schema cannot say: safe file names, sizes within the cap, and every file the runtime
    reads being listed."""
    check(manifest)
    for name, entry in manifest["files"].items():
        check_member_name(name, MANIFEST)
        if entry["size"] > MAX_FILE_BYTES:
            raise InvalidPackageError(
                f"{MANIFEST}: files.{name}.size is {entry['size']} bytes, larger than the "
                f"{MAX_FILE_BYTES >> 30} GiB cap for a package file"
            )
    for path in referenced_files(manifest) + mobile_files(manifest):
        if path not in manifest["files"]:
            raise InvalidPackageError(f"{MANIFEST}: {path} is referenced but not listed in 'files'")


def mobile_files(manifest: dict[str, Any]) -> list[str]:
    """The ONNX Runtime Mobile artifacts the manifest names (checked, not read, by this runtime)."""
    mobile = manifest.get("mobile") or {}
    return [mobile[k] for k in ("model", "required_operators") if isinstance(mobile.get(k), str)]


def referenced_files(manifest: dict[str, Any]) -> list[str]:
    """The package files the runtime itself reads: the model, samples, a tokenizer (and its
    tokenizer_config.json, whose special tokens a chat template may name), a chat template."""
    paths = [manifest["model"]]
    samples = manifest.get("samples") or {}
    if isinstance(samples.get("raw"), str):
        paths.append(samples["raw"])
    if isinstance(samples.get("images"), list):  # image packages: the raw image files
        paths.extend(p for p in samples["images"] if isinstance(p, str))
    for key in ("inputs", "outputs"):
        mapping = samples.get(key)
        if isinstance(mapping, dict):
            paths.extend(p for p in mapping.values() if isinstance(p, str))
    tokenizer = (manifest.get("preprocessing") or {}).get("tokenizer")
    if isinstance(tokenizer, str):
        paths.append(tokenizer)
    generation = manifest.get("generation") or {}
    if "tokenizer_config.json" in (manifest.get("files") or {}):
        paths.append("tokenizer_config.json")
    paths.extend(
        generation[k]
        for k in ("tokenizer", "sample", "chat_template")
        if isinstance(generation.get(k), str)
    )
    return paths


def check_listing(source: Source, manifest: dict[str, Any]) -> None:
    """The package holds exactly the listed files, each of its recorded size (step 4, before
    any of them is read: a size is free, and it stops a zip bomb before a byte is inflated)."""
    files: dict[str, dict[str, Any]] = manifest["files"]
    present = source.names()
    unlisted = sorted(present - set(files) - UNLISTED)
    if unlisted:
        raise IntegrityError(
            f"{unlisted[0]}: present in the package but not listed in the manifest"
            + (f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else "")
        )
    for name, entry in files.items():
        if name not in present:
            raise IntegrityError(f"{name}: listed in the manifest but missing from the package")
        if source.size(name) != entry["size"]:
            raise size_mismatch(name, entry["size"], source.size(name))

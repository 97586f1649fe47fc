"""Content ids: sha256 of files and folders, and the one rule for stamping input paths into keys.

A recipe names files and folders by path (a corpus, a teacher folder, a weights file, target
profiles); the path alone says nothing about what is there. Every path a step reads is stamped
into that step's cache key by its *content* (sha256 of every file, with relative names), so an
edited file reruns what depends on it, and touching a file without changing it reruns nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_files(folder: Path, skip: Iterable[str] = ()) -> list[Path]:
    """Every regular file under `folder`, sorted, except the top-level names in `skip`."""
    skipped = set(skip)
    return sorted(
        p
        for p in Path(folder).rglob("*")
        if p.is_file() and not (p.parent == Path(folder) and p.name in skipped)
    )


def content_id(folder: Path, skip: Iterable[str] = ()) -> str:
    """sha256 over the relative paths and bytes of every file in `folder` (but `skip`)."""
    h = hashlib.sha256()
    for p in tree_files(folder, skip):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    return h.hexdigest()


def stamp(path: str | Path) -> str:
    """The content stamp of a path a step reads: a file's sha256, a folder's content id, or
    "missing" (the step itself then reports the missing path with its own message)."""
    p = Path(path).expanduser()
    if p.is_file():
        return sha256_file(p)
    if p.is_dir():
        return content_id(p)
    return "missing"


def stamps(paths: Mapping[str, str | Path | None]) -> str:
    """One key fragment for a step's named input paths ("" when it names none)."""
    return ";".join(f"{name}={stamp(p)}" for name, p in sorted(paths.items()) if p)


def json_sha256(value: Any, *, default=None) -> str:
    """sha256 of `value` as canonical JSON (sorted keys, no spaces): the one rule for keying a
    value (a stage config's key, a search trial's id). `default`: json.dumps's, for values JSON
    has no type for."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=default)
    return hashlib.sha256(blob.encode()).hexdigest()

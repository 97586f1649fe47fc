"""Where a teacher comes from, parsed once: the source schemes (`scheme:spec`) and the files and
folders a source names, found without importing anything (packager.config.sources re-exports
them)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from packager.config.base import join_relative

# Every teacher source, by scheme (one Teacher class each, packager/sources/): the form each
# takes in teacher.source.
TEACHER_SCHEMES = {
    "builtin": "builtin:NAME",
    "python": "python:MODULE:FACTORY",
    "hf": "hf:FOLDER (or hf:pkg:MODULE/SUBDIR)",
    "api": "api:MODEL",
}


def split_source(source: str) -> tuple[str, str]:
    """(scheme, spec) of a `scheme:spec` source: the one place a source string is parsed."""
    scheme, sep, spec = source.partition(":")
    return (scheme, spec) if sep else ("", source)


def hf_source_relative(value: Any, base: Path) -> Any:
    """An `hf:FOLDER` source joined to `base`; a Hub id (OWNER/NAME[@REVISION]) with no such
    folder beside the recipe stays as written: the local Hugging Face cache resolves it."""
    if not isinstance(value, str) or split_source(value)[0] != "hf":
        return value
    spec = split_source(value)[1]
    if not spec.strip() or spec.startswith("pkg:"):
        return value
    from packager.hub import split_id

    if split_id(spec) is not None and not (base / spec).exists():
        return value
    return "hf:" + join_relative(spec, base)


def hf_folder(source: str) -> Path | None:
    """The folder an `hf:` source names (None for other schemes, or an uninstalled package).

    `hf:pkg:MODULE/SUBDIR` is a folder shipped inside an installed Python package, found with
    importlib without importing it; `hf:OWNER/NAME[@REVISION]` with no such folder is that Hub
    id's snapshot in the local Hugging Face cache, when it is there (packager.hub);
    packager.sources.hf.resolve adds the error messages."""
    scheme, spec = split_source(source)
    if scheme != "hf":
        return None
    if spec.startswith("pkg:"):
        return package_file(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        from packager.hub import cached_snapshot

        return cached_snapshot(spec) or path
    return path


def package_file(spec: str) -> Path | None:
    """The file `pkg:MODULE/PATH` names inside an installed Python package (found with
    importlib, never imported); the path itself for anything else; None when the package is
    not installed."""
    if not spec.startswith("pkg:"):
        return Path(spec)
    module, _, sub = spec[4:].partition("/")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    base = (
        Path(next(iter(found.submodule_search_locations)))
        if found.submodule_search_locations
        else Path(found.origin or "").parent
    )
    return base / sub


def python_module_file(source: str, import_path: str | None = None) -> Path | None:
    """The source file of a `python:MODULE:FACTORY` teacher's module, when it can be found
    without importing it (in `import_path`, else the working directory, then sys.path)."""
    scheme, spec = split_source(source)
    if scheme != "python" or spec.count(":") != 1:
        return None
    module = spec.split(":")[0]
    if "." in module:  # find_spec would import the parent packages
        return None
    folder = str(Path(import_path).resolve()) if import_path else str(Path.cwd())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    finally:
        if added:
            sys.path.remove(folder)
    origin = getattr(found, "origin", None)
    return Path(origin) if origin and Path(origin).is_file() else None

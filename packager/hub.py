"""Hugging Face Hub ids, offline: a model already in the local Hugging Face cache is used as it
is; it is downloaded only when the user asks (`--allow-download`).

The cache is the one `hf download` and transformers write: `$HF_HUB_CACHE`, else
`$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`, read
when asked (not when a library was imported), holding `models--OWNER--NAME/refs/main` (the
commit) and `snapshots/COMMIT/` (the files). huggingface_hub reads that layout
(`try_to_load_from_cache`); the snapshot folder's name is the revision that provenance records.
A source names one as `OWNER/NAME` or `OWNER/NAME@REVISION` (a branch, tag or commit).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

from packager.errors import InputFileError, one_line

HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?")


def split_id(spec: str) -> tuple[str, str | None] | None:
    """(repo, revision) of `OWNER/NAME[@REVISION]`; None when `spec` is not shaped like one."""
    m = HUB_ID.fullmatch(spec)
    return (m["repo"], m["revision"]) if m else None


def cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def cached_snapshot(spec: str) -> Path | None:
    """The snapshot folder of a Hub id in the local cache (its config.json there at the
    revision asked for, `main` by default); None when it is not cached."""
    parts = split_id(spec)
    if parts is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        parts[0], "config.json", cache_dir=str(cache_dir()), revision=parts[1]
    )
    return Path(found).parent if isinstance(found, str) else None


def download_command(spec: str) -> str:
    """The command that puts a Hub id into the cache edgepack reads."""
    repo, revision = split_id(spec) or (spec, None)
    cmd = f"hf download {repo}" + (f" --revision {revision}" if revision else "")
    default = os.environ.get("HF_HUB_CACHE") is None and os.environ.get("HF_HOME") is None
    return cmd if default else f"{cmd} --cache-dir {cache_dir()}"


def not_cached(spec: str, what: str) -> InputFileError:
    return InputFileError(
        f"{what} {spec}: no such folder, and the Hub id {spec!r} is not in the local Hugging "
        f"Face cache ({cache_dir()}); edgepack works offline unless asked: download it with "
        f"`{download_command(spec)}`, or rerun with --allow-download"
    )


@contextmanager
def _online():
    """huggingface_hub reads HF_HUB_OFFLINE (which edgepack sets) when a request is made."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def download(spec: str) -> Path:
    """Download a Hub id into the cache (the user asked: --allow-download); its snapshot."""
    repo, revision = split_id(spec) or (spec, None)
    from huggingface_hub import snapshot_download

    try:
        with _online():
            folder = snapshot_download(repo, revision=revision, cache_dir=str(cache_dir()))
    except Exception as err:  # network, auth, missing repo: one line, whatever the library
        raise InputFileError(
            f"--allow-download: could not download {spec} from the Hugging Face Hub "
            f"({one_line(err)}); download it with `{download_command(spec)}` where the Hub is "
            "reachable"
        ) from None
    return Path(folder)


def ensure(spec: str, allow_download: bool) -> Path | None:
    """The snapshot of a Hub id: cached, else downloaded when allowed; None when not cached
    and not allowed (the caller's own check then says how to get it)."""
    found = cached_snapshot(spec)
    if found is None and allow_download:
        return download(spec)
    return found


def ensure_source(source: str) -> None:
    """`--allow-download` for a recipe's `hf:OWNER/NAME[@REV]` teacher: into the cache when it
    is not there (a folder of that name, or any other source, is left alone)."""
    spec = source.removeprefix("hf:")
    if source.startswith("hf:") and split_id(spec) and not Path(spec).expanduser().exists():
        ensure(spec, allow_download=True)

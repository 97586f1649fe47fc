"""Content-addressed stage outputs: key = hash(stage, its version, config, input artifact ids).

Outputs are built in a temporary sibling folder and renamed into place, so a crash, Ctrl-C or
kill -9 never leaves a half-written folder that looks finished; the next run sweeps the
leftovers. Every entry records the size and sha256 of each of its files, and every reuse checks
them: a damaged entry (a flipped byte, a truncated or missing file, an unreadable record) is a
cache miss with one warning, and the step is rebuilt. Two runs committing the same key at once
both succeed: the entries are equal by construction, and the first one to land is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from packager._version import __version__
from packager.artifact import ARTIFACT_FILE, Artifact
from packager.files import process_alive
from packager.hashing import content_id, sha256_file, tree_files

DEFAULT_CACHE = Path(".edgepack") / "cache"


def cache_root(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get("EDGEPACK_CACHE") or DEFAULT_CACHE)


def stage_key(
    stage: str, version: int, config: dict[str, Any], input_ids: list[str], extra: str = ""
) -> str:
    blob = json.dumps(
        {
            "stage": stage,
            "stage_version": version,
            "edgepack": __version__,
            "config": config,
            "inputs": input_ids,
            "extra": extra,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def artifact_id(folder: Path) -> str:
    """The content id of a stage output folder (its artifact record excluded)."""
    return content_id(folder, skip=(ARTIFACT_FILE,))


def file_list(folder: Path) -> dict[str, dict[str, Any]]:
    """relative path -> size and sha256 of every file of an output folder but its record."""
    return {
        p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in tree_files(folder, skip=(ARTIFACT_FILE,))
    }


def damage(folder: Path, recorded: Any) -> str | None:
    """What is wrong with a cached folder against its recorded file list (None: intact)."""
    if not isinstance(recorded, dict) or not recorded:
        return "its record lists no files to check"
    present = {p.relative_to(folder).as_posix() for p in tree_files(folder, skip=(ARTIFACT_FILE,))}
    for name in sorted(set(recorded) - present):
        return f"{name} is missing"
    for name in sorted(present - set(recorded)):
        return f"{name} is not in its record"
    for name, want in sorted(recorded.items()):
        path = folder / name
        if path.is_symlink() or path.stat().st_size != want.get("size"):
            return f"{name} has changed size"
        if sha256_file(path) != want.get("sha256"):
            return f"{name} does not match its recorded sha256"
    return None


class Cache:
    def __init__(self, root: str | Path | None = None):
        self.root = cache_root(root)

    def folder(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:20]

    def scratch(self, stage: str, key: str) -> Path:
        """The work folder of a step (its checkpoints), kept until the step commits; the
        sweep of temporary folders leaves it, so an interrupted run can resume from it."""
        return self.root / stage / f".work-{key[:20]}"

    def get(
        self, stage: str, key: str, warn: Callable[[str], None] | None = None, repair: bool = True
    ) -> Artifact | None:
        """The cached output, checked file by file against its record; None when there is none
        or it is damaged (then `warn` is told why and, with `repair`, the entry is removed)."""
        folder = self.folder(stage, key)
        record = folder / ARTIFACT_FILE
        if not folder.exists() and not folder.is_symlink():
            return None
        if not record.is_file():  # a folder without its record was never committed whole
            problem = f"its record {ARTIFACT_FILE} is missing"
        else:
            try:
                rec = json.loads(record.read_text())
                meta = rec.get("meta", {})
                art = Artifact(path=folder, kind=rec["kind"], id=rec["id"], meta=meta)
                problem = damage(folder, rec.get("files"))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                problem = f"its record {ARTIFACT_FILE} is unreadable ({type(err).__name__})"
        if problem is None:
            return art
        if warn is not None:
            warn(f"cache entry {stage}/{folder.name} is damaged: {problem}; rebuilding it")
        if repair:
            self._discard(folder)
        return None

    def _discard(self, folder: Path) -> None:
        """Move a damaged entry out of the way (one rename), then delete it."""
        aside = folder.parent / f".tmp-damaged-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            os.replace(folder, aside)
        except OSError:
            return  # another run moved it first
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:  # a file (or link) where the entry's folder belongs
            aside.unlink(missing_ok=True)

    @contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """Yield a temporary folder; on success the caller's `commit` renames it into place."""
        final = self.folder(stage, key)
        tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir(parents=True)
        try:
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def commit(
        self,
        tmp: Path,
        stage: str,
        key: str,
        kind: str,
        meta: dict[str, Any],
        record: dict[str, Any],
    ) -> Artifact:
        final = self.folder(stage, key)
        art_id = artifact_id(tmp)
        rec = {"kind": kind, "id": art_id, "files": file_list(tmp), "meta": meta, **record}
        (tmp / ARTIFACT_FILE).write_text(json.dumps(rec, indent=2, sort_keys=True, default=str))
        if final.exists() and self.get(stage, key) is not None:
            # A concurrent run committed the same key first: its entry is as good as ours.
            shutil.rmtree(tmp, ignore_errors=True)
            return Artifact.read(final)
        try:
            os.replace(tmp, final)
        except OSError:
            if self.get(stage, key) is None:  # not a concurrent commit: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return Artifact.read(final)
        return Artifact(path=final, kind=kind, id=art_id, meta=meta)

    def sweep(self) -> int:
        """Remove temporary folders left by interrupted runs whose process is gone."""
        removed = 0
        if not self.root.exists():
            return 0
        for tmp in self.root.glob("*/.tmp-*"):
            try:
                pid = int(tmp.name.split("-")[-2])
            except (ValueError, IndexError):
                pid = -1
            if pid == os.getpid() or process_alive(pid):
                continue
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
        return removed

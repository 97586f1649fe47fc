"""Content-addressed stage outputs: key = hash(stage, its version, config, input artifact ids).

Outputs are built in a temporary sibling folder and renamed into place, so a crash or Ctrl-C
never leaves a half-written folder that looks finished; the next run sweeps the leftovers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from packager._version import __version__
from packager.artifact import ARTIFACT_FILE, Artifact
from packager.hashing import content_id

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


class Cache:
    def __init__(self, root: str | Path | None = None):
        self.root = cache_root(root)

    def folder(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:20]

    def get(self, stage: str, key: str) -> Artifact | None:
        folder = self.folder(stage, key)
        if (folder / ARTIFACT_FILE).is_file():
            return Artifact.read(folder)
        return None

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
        rec = {"kind": kind, "id": art_id, "meta": meta, **record}
        (tmp / ARTIFACT_FILE).write_text(json.dumps(rec, indent=2, sort_keys=True, default=str))
        if final.exists():  # an earlier interrupted commit or a concurrent run: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
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
            if pid == os.getpid() or _alive(pid):
                continue
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
        return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

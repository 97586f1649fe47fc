"""The call cache of API teachers: every answer an endpoint gave, content-addressed by its
request, one JSON file each, written through a temporary name and renamed into place.

An interrupted build resumes without paying twice (the answers it got are here, the one in
flight when it died is not: a temporary file, swept on the next start), and a rebuild makes no
call. The key is sha256 of the endpoint's URL, the API path and the request body as sent: the
API key is a header, never part of the request body, so it is in no key and no entry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from packager.files import atomic_path, process_alive
from packager.hashing import json_sha256

CALLS_DIR = "calls"  # beside the stage folders in the cache root


def request_key(base_url: str, path: str, body: dict[str, Any]) -> str:
    """The content address of one request: the URL, the API path and the body."""
    return json_sha256({"url": base_url.rstrip("/"), "path": path, "body": body})


class CallCache:
    """`root`/ab/abcdef....json: {"request": ..., "response": ..., "at": ...}."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None (also for an entry that cannot be read: it is asked again
        and replaced, never trusted)."""
        try:
            entry = json.loads(self._file(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or "response" not in entry:
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        with atomic_path(self._file(key)) as tmp:
            tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")

    def sweep(self) -> int:
        """Remove the temporary files of writers that died (their process is gone)."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for tmp in self.root.glob("*/.*.tmp-*"):
            try:
                pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-")[0])
            except (ValueError, IndexError):
                pid = -1
            if pid == os.getpid() or process_alive(pid):
                continue
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0

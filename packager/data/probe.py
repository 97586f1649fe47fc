"""Out-of-domain probes: held-out text of another kind than the training corpus, so evaluation
says how faithful a student is on text it never saw (packager.stages.probe builds them).

A probe source is `builtin:NAME` (text already on this machine, packager.data.offline: the
fortunes, the Devil's Dictionary, the Jargon File) or a text file of the user's (.txt, .jsonl,
.csv, .parquet or a save_to_disk folder, read like data). The probe is a seeded sample of at most
`limit` cleaned, deduplicated texts, so the same source always gives the same probe.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

from packager.config.sources import PROBE_FILES
from packager.data import offline
from packager.errors import InputFileError

BUILTIN: dict[str, tuple[Callable[[Path], Iterator[str]], str]] = {
    # name: (reader of its file, the Debian package that ships it); files: PROBE_FILES
    "fortunes": (offline.fortunes, "fortunes-min"),
    "devil": (offline.dictd, "dict-devil"),
    "jargon": (offline.dictd, "dict-jargon"),
}


def _texts(source: str, text_column: str) -> Iterator[str]:
    if source.startswith("builtin:"):
        name = source.removeprefix("builtin:")
        if name not in BUILTIN:
            raise InputFileError(
                f"evaluate.probe {source}: unknown builtin probe (known: "
                f"{', '.join('builtin:' + k for k in BUILTIN)})"
            )
        reader, package = BUILTIN[name]
        path = PROBE_FILES[name]
        if not path.exists():
            raise InputFileError(
                f"evaluate.probe {source}: {path} not found: apt-get install {package} (or "
                "scripts/setup_system.sh), or set evaluate.probe to a text file of your own"
            )
        yield from reader(path)
        return
    from packager.data.text import read_rows

    for rows in read_rows(Path(source), 1024, text_column, f"evaluate.probe {source}"):
        for row in rows:
            if row.get(text_column) is not None:
                yield str(row[text_column])


def probe_texts(source: str, limit: int, seed: int, text_column: str = "text") -> list[str]:
    """A seeded sample of at most `limit` cleaned, distinct texts of the source."""
    seen: set[str] = set()
    texts = []
    for raw in _texts(source, text_column):
        text = offline.clean(raw, max_words=80)
        if text is not None and text.lower() not in seen:
            seen.add(text.lower())
            texts.append(text)
    if len(texts) < 20:
        raise InputFileError(
            f"evaluate.probe {source}: {len(texts)} usable texts; a probe needs at least 20"
        )
    random.Random(seed).shuffle(texts)
    return texts[:limit]

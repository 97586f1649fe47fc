"""Cheap, seeded augmentation of training text (data.augment): each training text gets `copies`
variants, each with some words swapped for a WordNet synonym (EDA's synonym replacement, from
the `wordnet-base` Debian package, offline) and one span of words deleted. The variants are
appended to the training split only, so the teacher labels them like any training text
(teacher_outputs) and validation, test, probes and calibration never see them.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from packager.errors import InputFileError

WORDNET = Path("/usr/share/wordnet")
_WORD = re.compile(r"[A-Za-z]+")


def synonyms(folder: Path = WORDNET) -> dict[str, list[str]]:
    """word -> its single-word WordNet synonyms (every sense pooled), sorted: lowercase."""
    found: dict[str, set[str]] = {}
    for pos in ("adj", "adv", "noun", "verb"):
        path = Path(folder) / f"data.{pos}"
        if not path.is_file():
            raise InputFileError(
                f"data.augment: {path} not found: apt-get install wordnet-base (or set "
                "data.augment.synonyms = 0)"
            )
        with path.open(encoding="latin-1") as f:
            for line in f:
                if line.startswith(" "):
                    continue  # the license header
                fields = line.split(" ")
                count = int(fields[3], 16)
                lemmas = {re.sub(r"\(.*\)$", "", w).lower() for w in fields[4 : 4 + 2 * count : 2]}
                words = sorted(w for w in lemmas if w.isalpha())
                for w in words:
                    found.setdefault(w, set()).update(x for x in words if x != w)
    return {w: sorted(s) for w, s in found.items() if s}


def augment(text: str, rng: random.Random, table: dict[str, list[str]], cfg) -> str:
    """One variant: about `cfg.synonyms` of the words with a synonym swapped, then one span of
    about `cfg.span_delete` of the words deleted (never the whole text)."""
    words = text.split(" ")
    out = []
    for w in words:
        core = _WORD.fullmatch(w)
        choices = table.get(w.lower()) if core else None
        if choices and rng.random() < cfg.synonyms:
            w = rng.choice(choices)
        out.append(w)
    span = round(cfg.span_delete * len(out))
    if span and len(out) - span >= 2:
        start = rng.randrange(len(out) - span + 1)
        del out[start : start + span]
    return " ".join(out)


def augment_train(folder: Path, cfg) -> int:
    """Append `cfg.copies` variants of every row of folder/train.jsonl (labels kept) to it, in
    a seeded order; returns the split's new size. A variant equal to its text is left out."""
    path = Path(folder) / "train.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    table = synonyms(Path(cfg.wordnet)) if cfg.synonyms > 0 else {}
    rng = random.Random(cfg.seed)
    extra = []
    for row in rows:
        for _ in range(cfg.copies):
            text = augment(row["text"], rng, table, cfg)
            if text != row["text"]:
                extra.append({**row, "text": text})
    with path.open("a", encoding="utf-8") as f:
        for row in extra:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows) + len(extra)

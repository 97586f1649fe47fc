"""English text already on a machine (or one apt-get away), read without a network.

Readers yield raw paragraphs; `clean` keeps what reads like prose. Used by
scripts/make_corpus.py (the training corpus) and by the probe stage (held-out general English
for evaluation). Every reader is deterministic: the same files give the same texts in the same
order.

- fortunes: the `fortunes` / `fortunes-min` packages (/usr/share/games/fortunes): quotations,
  jokes and sayings, one entry between `%` lines. Held out of the corpus: the default probe.
- dictd: dictionaries in dictd format (`dict-gcide`, `dict-devil`, `dict-jargon`, ...): each
  entry's body paragraphs, headword lines and bracketed source tags dropped.
- wordnet: WordNet 3.0 (`wordnet-base`): every synset's gloss and each quoted example sentence.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

from packager.config.sources import PROBE_FILES

FORTUNES = PROBE_FILES["fortunes"]
DICTD = Path("/usr/share/dictd")
WORDNET = Path("/usr/share/wordnet")

_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # bells and escapes in old text files
# Paragraphs that are lists, URLs or code read like noise to a sentence encoder.
_NOISE = re.compile(r"(https?://|[{}<>|\\]|^\s*[-*o+]\s|\$ |>>>)")


def clean(text: str, min_words: int = 4, max_words: int = 120) -> str | None:
    """Whitespace-normalised prose, or None for lists, code, tables and too short or long text."""
    text = _WS.sub(" ", _CONTROL.sub("", text)).strip()
    words = text.split(" ")
    if not min_words <= len(words) <= max_words or _NOISE.search(text):
        return None
    letters = sum(c.isalpha() for c in text)
    if letters < 0.6 * len(text):  # tables, version lists, ascii art
        return None
    return text


def fortunes(folder: Path = FORTUNES) -> Iterator[str]:
    """Each fortune of every plain-text file in the folder (sorted by name); attributions
    ("-- Author") are dropped so the text is the saying itself."""
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.suffix):
        try:
            body = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for entry in body.split("\n%\n"):
            lines = [ln for ln in entry.splitlines() if not ln.strip().startswith("--")]
            yield " ".join(lines)


def dictd(path: Path) -> Iterator[str]:
    """Body paragraphs of a dictd dictionary (.dict or .dict.dz): the lines after each entry's
    headword, split at blank lines, with [1913 Webster]-style tags and --Source marks removed."""
    opener = gzip.open if str(path).endswith(".dz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        paragraph: list[str] = []
        for line in f:
            if not line.strip():
                if paragraph:
                    yield _dict_paragraph(paragraph)
                paragraph = []
            elif line[0].isspace():  # entry bodies are indented; headwords are not
                paragraph.append(line.strip())
        if paragraph:
            yield _dict_paragraph(paragraph)


def _dict_paragraph(lines: list[str]) -> str:
    text = " ".join(lines)
    text = re.sub(r"\[[^\]]*\]", "", text)  # [1913 Webster], [R.], [Obs.]
    text = re.sub(r"--\s*[A-Z][\w.]*\.?", "", text)  # --Bailey.
    text = re.sub(r"^\d+\.\s*(\([^)]*\)\s*)?", "", text)  # "1. (Anat.) "
    return text


def wordnet(folder: Path = WORDNET) -> Iterator[str]:
    """Every synset's gloss (its definition) and each quoted example sentence, nouns, verbs,
    adjectives and adverbs in file order."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = Path(folder) / f"data.{pos}"
        if not path.is_file():
            continue
        with path.open(encoding="latin-1") as f:
            for line in f:
                if line.startswith(" ") or "|" not in line:
                    continue  # the license header, or a line with no gloss
                gloss = line.split("|", 1)[1]
                examples = re.findall(r'"([^"]+)"', gloss)
                definition = re.sub(r'"[^"]*"', "", gloss).strip(" ;\n")
                yield definition
                yield from examples

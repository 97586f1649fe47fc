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
- html_paragraphs: the text of every <p> of an HTML page (Debian's and Python's manuals).
- roff: the prose paragraphs of a man page (`manpages`, `manpages-dev`), macros and font
  escapes dropped, no-fill blocks (code, tables) skipped.
"""

from __future__ import annotations

import gzip
import html.parser
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
        if path.is_file():
            yield from wordnet_file(path)


def wordnet_file(path: Path) -> Iterator[str]:
    """The glosses and quoted examples of one WordNet data file (data.noun, ...)."""
    with Path(path).open(encoding="latin-1") as f:
        for line in f:
            if line.startswith(" ") or "|" not in line:
                continue  # the license header, or a line with no gloss
            gloss = line.split("|", 1)[1]
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = re.sub(r'"[^"]*"', "", gloss).strip(" ;\n")
            yield definition
            yield from examples


class _Paragraphs(html.parser.HTMLParser):
    """The text of every <p> of an HTML page (code blocks and navigation are not paragraphs)."""

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._depth, self._parts = 0, []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "p":
            self._depth += 1

    def handle_endtag(self, tag) -> None:
        if tag == "p" and self._depth:
            self._depth -= 1
            self.paragraphs.append("".join(self._parts))
            self._parts = []

    def handle_data(self, data) -> None:
        if self._depth:
            self._parts.append(data)


def html_paragraphs(path: Path) -> Iterator[str]:
    """The text of every <p> of an HTML file (.html or .html.gz)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        parser = _Paragraphs()
        parser.feed(f.read())
    yield from parser.paragraphs


# Requests that end a paragraph; the font macros' arguments are text.
_ROFF_BREAKS = {"PP", "P", "LP", "SH", "SS", "TP", "IP", "HP", "sp", "br", "TH", "RS", "RE"}
_ROFF_FONTS = {"B", "I", "R", "BR", "BI", "IB", "IR", "RB", "RI", "SM", "SB"}
_ROFF_SKIPPED = {"SYNOPSIS", "SEE ALSO", "EXAMPLES", "EXAMPLE", "COLOPHON", "FILES"}
_ROFF_ESCAPES = re.compile(r"\\f(\[[^\]]*\]|\(..|.)|\\\(..|\\\[[^\]]*\]|\\[&|^:/,]|\\\*.")
_ROFF_SPACES = re.compile(r"\\[ ~0]")
_ROFF_NAMED = {r"\-": "-", r"\(em": " - ", r"\(en": "-", r"\(aq": "'", r"\(dq": '"', r"\e": "\\"}


def _roff_text(line: str) -> str:
    for escape, char in _ROFF_NAMED.items():
        line = line.replace(escape, char)
    return _ROFF_ESCAPES.sub("", _ROFF_SPACES.sub(" ", line))


def roff(path: Path) -> Iterator[str]:
    """The prose paragraphs of a man page (.gz or plain): text lines and the arguments of font
    macros, split at paragraph requests; no-fill and example blocks and the SYNOPSIS, SEE ALSO,
    EXAMPLES and FILES sections are skipped."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    paragraph: list[str] = []
    skip_block = skip_section = False
    for line in lines:
        request = line[1:].split(None, 1) if line[:1] in ".'" else None
        name = request[0] if request else None
        if name in ("nf", "EX"):
            skip_block = True
        elif name in ("fi", "EE"):
            skip_block = False
        if request is None:
            if not skip_block and not skip_section and line.strip():
                paragraph.append(_roff_text(line))
            elif not line.strip() and paragraph:
                yield " ".join(paragraph)
                paragraph = []
            continue
        if name in _ROFF_BREAKS or name in ("nf", "EX"):
            if paragraph:
                yield " ".join(paragraph)
            paragraph = []
            if name in ("SH", "SS"):
                title = request[1].strip().strip('"') if len(request) > 1 else ""
                skip_section = name == "SH" and title.upper() in _ROFF_SKIPPED
        elif name in _ROFF_FONTS and len(request) > 1 and not (skip_block or skip_section):
            words = re.findall(r'"([^"]*)"|(\S+)', request[1])
            glue = " " if name in ("B", "I", "SM", "SB") else ""  # BR, IR...: alternating fonts
            paragraph.append(_roff_text(glue.join(a or b for a, b in words)))
    if paragraph:
        yield " ".join(paragraph)

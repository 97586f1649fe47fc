"""Build a real English text corpus offline, from text already on this machine.

    python scripts/make_corpus.py                      # -> .edgepack/corpus/english.jsonl
    python scripts/make_corpus.py --limit 20000 -o my.jsonl
    python scripts/make_corpus.py --sources debian,python-stdlib   # the corpus before issue 11

Sources, all English written by people (those from Debian packages need them installed:
`scripts/setup_system.sh --corpus`, or apt-get install the package named below):
- debian: package descriptions (`apt-cache dumpavail`): the synopsis and each paragraph of the
  long description (run `apt-get update` once if the script says the dump is empty);
- python-stdlib: docstring paragraphs of the installed Python standard library (read with ast);
- python-docs: prose paragraphs of the Python documentation (`python3-doc`, HTML);
- wordnet: WordNet glosses and their example sentences (`wordnet-base`): everyday English;
- gcide: definitions and quotations of the Collaborative International Dictionary of English
  (`dict-gcide`, Webster 1913 + WordNet).
Held out, never in the corpus: the fortunes (`fortunes`), the Devil's Dictionary (`dict-devil`)
and the Jargon File (`dict-jargon`), which the evaluation probes are made of (packager.data.probe).

Texts are whitespace-normalised, kept when they have 4 to 120 words, deduplicated and shuffled
with a fixed seed, so the same machine gives the same file; each source contributes at most
`--per-source` texts, so no one source swamps the mix. Output: one JSON object a line,
{"text": ..., "source": NAME}.
"""

from __future__ import annotations

import argparse
import ast
import html.parser
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_OUT = Path(".edgepack/corpus/english.jsonl")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from packager.data import offline  # noqa: E402  (the readers the probe stage uses too)

PYTHON_DOCS = Path("/usr/share/doc/python3-doc/html")


def debian_texts() -> Iterator[str]:
    """Synopsis and long-description paragraphs of every package apt knows about."""
    if shutil.which("apt-cache") is None:
        print("make_corpus: apt-cache not found, skipping Debian descriptions", file=sys.stderr)
        return
    proc = subprocess.run(
        ["apt-cache", "dumpavail"], capture_output=True, text=True, errors="replace", check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        print(
            "make_corpus: `apt-cache dumpavail` printed nothing: run `apt-get update` first "
            "(as root) to fetch the package lists",
            file=sys.stderr,
        )
        return
    in_description, paragraph = False, []
    for line in proc.stdout.splitlines():
        if line.startswith("Description:"):
            in_description, paragraph = True, []
            yield line.split(":", 1)[1]
        elif in_description and line.startswith(" "):
            if line.strip() == ".":  # Debian's paragraph separator inside a description
                yield " ".join(paragraph)
                paragraph = []
            else:
                paragraph.append(line.strip())
        elif in_description:
            yield " ".join(paragraph)
            in_description = False


def stdlib_texts() -> Iterator[str]:
    """Each prose paragraph of every docstring in the standard library's .py files."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if any(part in ("test", "tests", "site-packages", "idlelib") for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        nodes = [tree] + [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        for node in nodes:
            doc = ast.get_docstring(node)
            if doc:
                yield from doc.split("\n\n")


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


def python_docs_texts() -> Iterator[str]:
    if not PYTHON_DOCS.is_dir():
        print(
            "make_corpus: no Python docs (apt-get install python3-doc), skipping", file=sys.stderr
        )
        return
    for path in sorted(PYTHON_DOCS.rglob("*.html")):
        if "_static" in path.parts or "whatsnew" in path.parts:
            continue
        parser = _Paragraphs()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        yield from parser.paragraphs


def _installed(name: str, texts: Callable[[], Iterator[str]], path: Path, package: str):
    def run() -> Iterator[str]:
        if not path.exists():
            print(
                f"make_corpus: no {name} ({path}; apt-get install {package}), skipping",
                file=sys.stderr,
            )
            return
        yield from texts()

    return run


SOURCES: dict[str, Callable[[], Iterator[str]]] = {
    "debian": debian_texts,
    "python-stdlib": stdlib_texts,
    "python-docs": python_docs_texts,
    "wordnet": _installed("wordnet", offline.wordnet, offline.WORDNET, "wordnet-base"),
    "gcide": _installed(
        "gcide",
        lambda: offline.dictd(offline.DICTD / "gcide.dict.dz"),
        offline.DICTD / "gcide.dict.dz",
        "dict-gcide",
    ),
}


def build(
    out: Path, limit: int | None, seed: int, sources: list[str], per_source: int | None
) -> dict[str, int]:
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    counts: dict[str, int] = {}
    for source in sources:
        found: list[dict[str, str]] = []
        for raw in SOURCES[source]():
            text = offline.clean(raw)
            if text is None or text.lower() in seen:
                continue
            seen.add(text.lower())
            found.append({"text": text, "source": source})
        # A seeded sample per source, so a large source does not swamp the mix.
        random.Random(f"{seed}:{source}").shuffle(found)
        found = found[:per_source] if per_source else found
        rows += found
        counts[source] = len(found)
    if not rows:
        raise SystemExit("make_corpus: no text found (see the messages above)")
    random.Random(seed).shuffle(rows)
    rows = rows[:limit] if limit else rows
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)  # never a half-written corpus under the final name
    return {"written": len(rows), **counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help=f"[{DEFAULT_OUT}]")
    ap.add_argument("--limit", type=int, default=None, help="keep at most this many texts")
    ap.add_argument("--seed", type=int, default=0, help="shuffle seed [0]")
    ap.add_argument(
        "--sources", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}"
    )
    ap.add_argument(
        "--per-source", type=int, default=60000, help="at most this many texts a source [60000]"
    )
    args = ap.parse_args()
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise SystemExit(f"make_corpus: unknown source(s) {unknown}; known: {', '.join(SOURCES)}")
    counts = build(args.out, args.limit, args.seed, sources, args.per_source or None)
    found = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "written")
    print(f"{args.out}: {counts['written']} texts ({found} found)")


if __name__ == "__main__":
    main()

"""Build a real English text corpus offline, from text already on this machine.

    python scripts/make_corpus.py                      # -> .edgepack/corpus/english.jsonl
    python scripts/make_corpus.py --limit 20000 -o my.jsonl

Two sources, both plain English written by people:
- Debian package descriptions (`apt-cache dumpavail`): the one-line synopsis and each paragraph
  of the long description. Needs apt's package lists: run `apt-get update` once if the script
  says the dump is empty.
- Docstrings of the installed Python standard library (read with `ast`, nothing is imported):
  each paragraph of every module, class and function docstring.

Texts are whitespace-normalised, kept when they have 4 to 120 words, deduplicated (many -dev /
-doc packages share boilerplate) and shuffled with a fixed seed, so the same machine gives the
same file. Output: one JSON object a line, {"text": ..., "source": "debian" | "python-stdlib"}.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

DEFAULT_OUT = Path(".edgepack/corpus/english.jsonl")
_WS = re.compile(r"\s+")
# Paragraphs that are lists, URLs or code read like noise to a sentence encoder.
_NOISE = re.compile(r"(https?://|[{}<>|\\]|^\s*[-*o+]\s|\$ |>>>)")


def _clean(text: str) -> str | None:
    text = _WS.sub(" ", text).strip()
    words = text.split(" ")
    if not 4 <= len(words) <= 120 or _NOISE.search(text):
        return None
    letters = sum(c.isalpha() for c in text)
    if letters < 0.6 * len(text):  # tables, version lists, ascii art
        return None
    return text


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


def build(out: Path, limit: int | None, seed: int) -> dict[str, int]:
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    counts: dict[str, int] = {}
    for source, texts in (("debian", debian_texts()), ("python-stdlib", stdlib_texts())):
        for raw in texts:
            text = _clean(raw)
            if text is None or text.lower() in seen:
                continue
            seen.add(text.lower())
            rows.append({"text": text, "source": source})
            counts[source] = counts.get(source, 0) + 1
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
    args = ap.parse_args()
    counts = build(args.out, args.limit, args.seed)
    found = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "written")
    print(f"{args.out}: {counts['written']} texts ({found} found)")


if __name__ == "__main__":
    main()

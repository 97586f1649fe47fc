"""Build a real English text corpus offline, from text already on this machine, pinned.

    python scripts/make_corpus.py                      # -> .edgepack/corpus/english.jsonl
    python scripts/make_corpus.py --limit 20000 -o my.jsonl
    python scripts/make_corpus.py --sources debian,python-stdlib   # the corpus before issue 11

Every source is text that named Debian packages ship (`bash scripts/setup_system.sh --corpus`
installs them all); a source whose package is missing is refused with one `error:` line naming
it, never skipped. Files are those dpkg says the package installed (/var/lib/dpkg/info/P.list),
read in sorted order, so two machines with the same package versions give the same corpus:
- debian: package synopses (and long descriptions, where the lists carry them) of the release's
  own `main` Packages list under /var/lib/apt/lists (`apt-get update`); the -updates and
  -security lists are left out, since they change from week to week;
- python-stdlib: docstring paragraphs of the standard library (`libpython3.X-stdlib`, ast);
- python-docs: prose paragraphs of the Python documentation (`python3-doc`, HTML);
- wordnet: WordNet glosses and their example sentences (`wordnet-base`): everyday English;
- gcide: definitions and quotations of the Collaborative International Dictionary of English
  (`dict-gcide`, Webster 1913 + WordNet);
- foldoc: the Free On-line Dictionary of Computing (`dict-foldoc`);
- debian-docs: the English prose of Debian's manuals (`debian-handbook`, `debian-reference-en`,
  `debian-faq`, `maint-guide`, `developers-reference`);
- manpages: the prose of the Linux man-pages project (`manpages`, `manpages-dev`: sections 2-7).
Held out, never in the corpus: the fortunes (`fortunes`), the Devil's Dictionary (`dict-devil`)
and the Jargon File (`dict-jargon`), which the evaluation probes are made of (packager.data.probe).

Texts are whitespace-normalised, kept when they have 4 to 120 words, deduplicated and shuffled
with a fixed seed; each source contributes at most `--per-source` texts, so no one source
swamps the mix. Output: one JSON object a line, {"text": ..., "source": NAME}, no timestamps.
Prints each source's package versions, texts and digest, then the corpus's sha256: equal
versions give an equal sha256 (`--root` reads another file-system tree, for tests).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import lzma
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OUT = Path(".edgepack/corpus/english.jsonl")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from packager.data import offline  # noqa: E402  (the readers the probe stage uses too)


class Refused(Exception):
    """A source that cannot be read as pinned: one error line."""


@dataclass(frozen=True)
class Source:
    """Text of Debian packages: `install` (what to apt-get install), `lists` (globs of the dpkg
    file lists its files come from), `files` (a pattern the files' paths match) and `read` (one
    file's raw paragraphs)."""

    install: tuple[str, ...]
    lists: tuple[str, ...]
    files: str
    read: Callable[[Path], Iterator[str]]


def _stdlib_paragraphs(path: Path) -> Iterator[str]:
    """Each prose paragraph of every docstring of a .py file."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return
    nodes = [tree] + [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    for node in nodes:
        doc = ast.get_docstring(node)
        if doc:
            yield from doc.split("\n\n")


def _foldoc(path: Path) -> Iterator[str]:
    """FOLDOC's entries, its {cross-reference} braces unwrapped (offline.clean refuses braces)."""
    for text in offline.dictd(path):
        yield re.sub(r"\{([^{}]*)\}", r"\1", text)


SOURCES: dict[str, Source | None] = {
    "debian": None,  # the apt lists: debian_texts
    "python-stdlib": Source(  # Debian splits the standard library in two packages
        ("libpython3-stdlib", "libpython3-stdlib"),
        ("libpython3.*-minimal", "libpython3.*-stdlib"),
        r"/usr/lib/python3\.\d+/(?!test/|idlelib/|turtledemo/)[^ ]*\.py$",
        _stdlib_paragraphs,
    ),
    "python-docs": Source(
        ("python3-doc",),
        ("python3.*-doc",),
        r"/html/(?!_static/|whatsnew/)[^ ]*\.html$",
        offline.html_paragraphs,
    ),
    "wordnet": Source(
        ("wordnet-base",),
        ("wordnet-base",),
        r"/wordnet/data\.(noun|verb|adj|adv)$",
        offline.wordnet_file,
    ),
    "gcide": Source(("dict-gcide",), ("dict-gcide",), r"/gcide\.dict\.dz$", offline.dictd),
    "foldoc": Source(("dict-foldoc",), ("dict-foldoc",), r"/foldoc\.dict\.dz$", _foldoc),
    "debian-docs": Source(
        (
            "debian-handbook",
            "debian-reference-en",
            "debian-faq",
            "maint-guide",
            "developers-reference",
        ),
        (
            "debian-handbook",
            "debian-reference-en",
            "debian-faq",
            "maint-guide",
            "developers-reference",
        ),
        r"(/html/en-US/[^/]+|\.en|/developers-reference/[^/_][^/]*)\.html$",
        offline.html_paragraphs,
    ),
    "manpages": Source(
        ("manpages", "manpages-dev"),
        ("manpages", "manpages-dev"),
        r"/usr/share/man/man[2-7]/[^/]+\.gz$",
        offline.roff,
    ),
}

SETUP = "bash scripts/setup_system.sh --corpus"


def _dpkg_list(root: Path, pattern: str) -> list[Path]:
    info = root / "var/lib/dpkg/info"
    return sorted(info.glob(f"{pattern}.list")) + sorted(info.glob(f"{pattern}:*.list"))


def versions(root: Path, packages: list[str]) -> dict[str, str]:
    """Installed versions of the packages (dpkg's status file), for the printed record."""
    status = root / "var/lib/dpkg/status"
    found: dict[str, str] = {}
    if not status.is_file():
        return found
    for stanza in status.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Status): (.*)$", stanza, re.M))
        if fields.get("Package") in packages and "installed" in fields.get("Status", ""):
            found[fields["Package"]] = fields.get("Version", "?")
    return found


def source_files(name: str, src: Source, root: Path) -> tuple[list[Path], list[str]]:
    """(the files of the source, sorted; the dpkg package names they came from), or Refused."""
    files, packages = [], []
    for install, pattern in zip(src.install, src.lists, strict=True):
        lists = _dpkg_list(root, pattern)
        if not lists:
            raise Refused(
                f"source {name}: {install} is not installed (no {root}/var/lib/dpkg/info/"
                f"{pattern}.list): apt-get install {install}, or {SETUP}"
            )
        for lst in lists:
            packages.append(lst.name.removesuffix(".list").split(":")[0])
            for line in lst.read_text(encoding="utf-8").splitlines():
                path = root / line.lstrip("/")
                if re.search(src.files, line) and path.is_file() and not path.is_symlink():
                    files.append(path)
    if not files:
        raise Refused(
            f"source {name}: {', '.join(src.install)} installed but none of its files are on "
            f"disk: apt-get install --reinstall {' '.join(src.install)}"
        )
    return sorted(set(files)), packages


def packages_lists(root: Path) -> list[Path]:
    """The release's own main Packages lists (not -updates, -security or -backports)."""
    found = []
    for path in sorted((root / "var/lib/apt/lists").glob("*_Packages*")):
        m = re.search(r"_dists_([^_]+)_main_binary-[^_]+_Packages(\.\w+)?$", path.name)
        if m and "-" not in m.group(1):
            found.append(path)
    return found


def read_list(path: Path) -> str:
    """A Packages list, decompressed (.lz4 by apt's own helper, as apt reads it)."""
    if path.suffix == ".lz4":
        proc = subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", str(path)], capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise Refused(f"source debian: cannot read {path} (apt-helper cat-file failed)")
        return proc.stdout.decode("utf-8", errors="replace")
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return f.read()


def debian_texts(root: Path) -> tuple[Iterator[str], list[Path]]:
    lists = packages_lists(root)
    if not lists:
        raise Refused(
            f"source debian: no release Packages list in {root}/var/lib/apt/lists: run "
            "apt-get update (as root) to fetch the package lists"
        )

    def texts() -> Iterator[str]:
        for path in lists:
            yield from description_paragraphs(read_list(path))

    return texts(), lists


def description_paragraphs(packages: str) -> Iterator[str]:
    """Synopsis and long-description paragraphs of every stanza of a Packages list."""
    in_description, paragraph = False, []
    for line in packages.splitlines():
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
            if paragraph:
                yield " ".join(paragraph)
            in_description = False


def collect(name: str, root: Path) -> tuple[Iterator[str], str]:
    """(the raw texts of a source, what they were read from), or Refused."""
    src = SOURCES[name]
    if src is None:
        texts, lists = debian_texts(root)
        return texts, ", ".join(p.name for p in lists)
    files, packages = source_files(name, src, root)
    have = versions(root, packages)
    what = ", ".join(f"{p} {have.get(p, '?')}" for p in dict.fromkeys(packages))
    return (t for f in files for t in src.read(f)), f"{what}; {len(files)} files"


def build(
    out: Path, limit: int | None, seed: int, sources: list[str], per_source: int | None, root: Path
) -> list[tuple[str, int, str, str]]:
    """Write the corpus; return (source, texts, digest of its texts, what it read) per source.
    Every source is collected before anything is written: a refusal leaves no file."""
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    record = []
    for source in sources:
        raw, what = collect(source, root)
        found: list[str] = []
        for text in map(offline.clean, raw):
            if text is not None and text.lower() not in seen:
                seen.add(text.lower())
                found.append(text)
        # A seeded sample per source, so a large source does not swamp the mix.
        random.Random(f"{seed}:{source}").shuffle(found)
        found = found[:per_source] if per_source else found
        rows += [{"text": t, "source": source} for t in found]
        digest = hashlib.sha256("\n".join(found).encode("utf-8")).hexdigest()
        record.append((source, len(found), digest, what))
    random.Random(seed).shuffle(rows)
    rows = rows[:limit] if limit else rows
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)  # never a half-written corpus under the final name
    return record


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
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
    ap.add_argument("--root", type=Path, default=Path("/"), help="file-system root to read [/]")
    args = ap.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        print(
            f"error: unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}",
            file=sys.stderr,
        )
        return 2
    try:
        record = build(args.out, args.limit, args.seed, sources, args.per_source or None, args.root)
    except Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for source, n, digest, what in record:
        print(f"{source}: {n} texts, sha256 {digest[:16]} ({what})")
    written = sum(1 for _ in args.out.open(encoding="utf-8"))
    print(f"{args.out}: {written} texts")
    print(f"sha256 {sha256_file(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

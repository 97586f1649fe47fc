"""scripts/make_corpus.py, run as a user runs it, on a tiny fake file-system tree: a missing
source package is one error line naming the package (and no corpus is written), and the corpus
is deterministic: two builds into two folders are byte-identical and print the same sha256."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_corpus.py"

GCIDE = """gcide
  00-database-info

apple
   1. The fleshy fruit of a rosaceous tree, grown in many varieties.
      [1913 Webster]

   The apple of his eye was the little garden behind the house.
      --Bailey.

pear
   A sweet, juicy fruit that is narrow at the stalk and wider below.
"""

FOLDOC = """foldoc

compiler
   A program that translates a {high-level language} into {machine code} for a computer.

kernel
   The essential part of an {operating system} that manages memory and processes.
"""

PACKAGES = """Package: cowsay
Section: games
Description: configurable talking cow that says what you type
Description-md5: 0

Package: hello
Section: devel
Description: example package based on GNU hello
Description-md5: 0
"""

MANPAGE = """.TH pipe 7
.SH NAME
pipe \\- overview of pipes and FIFOs
.SH DESCRIPTION
Pipes and FIFOs provide a
.I one way
channel between processes on the same machine.
.PP
A pipe has a read end and a write end that are both file descriptors.
.nf
int fd[2];
.fi
"""


def _tree(root: Path, skip: str | None = None) -> Path:
    """The files and dpkg lists of the gcide, foldoc, manpages and debian sources."""
    files = {
        "usr/share/dictd/gcide.dict.dz": ("dict-gcide", gzip.compress(GCIDE.encode())),
        "usr/share/dictd/foldoc.dict.dz": ("dict-foldoc", gzip.compress(FOLDOC.encode())),
        "usr/share/man/man7/pipe.7.gz": ("manpages", gzip.compress(MANPAGE.encode())),
        "usr/share/man/man2/read.2.gz": ("manpages-dev", gzip.compress(MANPAGE.encode())),
    }
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    for rel, (package, data) in files.items():
        if package == skip:
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        with (info / f"{package}.list").open("a") as f:
            f.write(f"/{rel.rsplit('/', 1)[0]}\n/{rel}\n")
    lists = root / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "mirror_dists_stable_main_binary-amd64_Packages").write_text(PACKAGES)
    # -security lists change weekly: never read
    (lists / "mirror_dists_stable-security_main_binary-amd64_Packages").write_text(
        PACKAGES.replace("talking cow", "talking security cow")
    )
    return root


def _run(root: Path, out: Path, sources: str = "debian,gcide,foldoc,manpages"):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), "--sources", sources, "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_corpus_refuses_a_missing_source_naming_its_package(tmp_path):
    root = _tree(tmp_path / "root", skip="dict-foldoc")
    out = tmp_path / "out" / "english.jsonl"
    res = _run(root, out)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: source foldoc: dict-foldoc")
    assert "apt-get install dict-foldoc" in lines[0] and "Traceback" not in res.stderr
    assert not out.exists()  # nothing half-written


def test_make_corpus_refuses_missing_package_lists(tmp_path):
    root = _tree(tmp_path / "root")
    for f in (root / "var/lib/apt/lists").iterdir():
        f.unlink()
    res = _run(root, tmp_path / "c.jsonl", "debian")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: source debian:") and "apt-get update" in res.stderr


def test_make_corpus_is_deterministic_and_prints_its_sha256(tmp_path):
    root = _tree(tmp_path / "root")
    a, b = tmp_path / "a" / "english.jsonl", tmp_path / "b" / "english.jsonl"
    ra, rb = _run(root, a), _run(root, b)
    assert ra.returncode == 0, ra.stderr
    assert a.read_bytes() == b.read_bytes()
    digest = hashlib.sha256(a.read_bytes()).hexdigest()
    assert f"sha256 {digest}" in ra.stdout.splitlines()
    assert ra.stdout.replace(str(a), "") == rb.stdout.replace(str(b), "")
    rows = [json.loads(line) for line in a.read_text().splitlines()]
    texts = {r["text"]: r["source"] for r in rows}
    # each source's prose, cleaned: FOLDOC's braces unwrapped, roff macros and code dropped
    assert texts["configurable talking cow that says what you type"] == "debian"
    assert not any("security" in t for t in texts)
    assert (
        texts["A program that translates a high-level language into machine code for a computer."]
        == "foldoc"
    )
    assert (
        "Pipes and FIFOs provide a one way channel between processes on the same machine." in texts
    )
    assert not any("fd[2]" in t for t in texts)
    assert any(t.startswith("The fleshy fruit") for t in texts)
    # a different seed is a different shuffle of the same texts
    c = tmp_path / "c.jsonl"
    subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--root",
            str(root),
            "--sources",
            "debian,gcide,foldoc,manpages",
            "-o",
            str(c),
            "--seed",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    assert sorted(c.read_text().splitlines()) == sorted(a.read_text().splitlines())

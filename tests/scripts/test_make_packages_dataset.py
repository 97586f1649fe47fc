"""scripts/make_packages_dataset.py as a user runs it, on a fake apt lists folder: one row per
source package, the largest sections kept, the -security list never read, deterministic with a
printed sha256, and one error line when apt's lists are missing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_packages_dataset.py"


def _stanza(name: str, section: str, text: str, source: str | None = None) -> str:
    src = f"Source: {source}\n" if source else ""
    return f"Package: {name}\n{src}Section: {section}\nDescription: {text}\nDescription-md5: 0\n"


def _lists(root: Path) -> Path:
    stanzas = [
        _stanza("python3-foo", "python", "Python library for foo files"),
        _stanza("python3-bar", "python", "Python bindings to the bar service"),
        _stanza(
            "python3-bar-doc", "doc", "Python bindings to the bar service (docs)", "python3-bar"
        ),
        _stanza("libbaz-perl", "perl", "Perl module to parse baz records"),
        _stanza("libqux-perl", "perl", "Perl interface to qux"),
        _stanza("nethack", "games", "dungeon crawling game"),
    ]
    lists = root / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "m_dists_stable_main_binary-amd64_Packages").write_text("\n".join(stanzas))
    (lists / "m_dists_stable-security_main_binary-amd64_Packages").write_text(
        _stanza("zzz-secure", "python", "a security update")
    )
    return root


def _run(root: Path, out: Path, *extra: str):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), "-o", str(out), *extra],
        capture_output=True,
        text=True,
        check=False,
    )


def test_packages_dataset_is_one_row_per_source_and_deterministic(tmp_path):
    root = _lists(tmp_path / "root")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    ra = _run(root, a, "--sections", "2")
    assert ra.returncode == 0, ra.stderr
    assert _run(root, b, "--sections", "2").returncode == 0
    assert a.read_bytes() == b.read_bytes()
    assert f"sha256 {hashlib.sha256(a.read_bytes()).hexdigest()}" in ra.stdout
    rows = [json.loads(line) for line in a.read_text().splitlines()]
    # the two largest sections; python3-bar-doc shares python3-bar's source: one row for both
    assert sorted(r["package"] for r in rows) == [
        "libbaz-perl",
        "libqux-perl",
        "python3-bar",
        "python3-foo",
    ]
    assert {r["label"] for r in rows} == {"perl", "python"}
    assert "zzz-secure" not in a.read_text()


def test_packages_dataset_refuses_missing_lists(tmp_path):
    (tmp_path / "root").mkdir()
    res = _run(tmp_path / "root", tmp_path / "x.jsonl")
    assert res.returncode == 2 and not (tmp_path / "x.jsonl").exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "apt-get update" in lines[0]

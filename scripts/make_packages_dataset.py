"""Build a labelled text-classification dataset offline: Debian package synopses labelled by
their Section, from apt's own package lists, pinned.

    python scripts/make_packages_dataset.py            # -> .edgepack/data/debian-sections.jsonl
    python scripts/make_packages_dataset.py --sections 12 --per-section 800 -o my.jsonl

Reads the release's own `main` Packages list under /var/lib/apt/lists (the -updates and
-security lists change weekly and are left out; `apt-get update` fetches the lists: without
them the script stops with one `error:` line). One row per source package (its binary of the
same name, else the first by name), so no package, nor two binaries of one source with near
identical synopses, can land in two splits of the data stage's per-row split; a synopsis seen
in an earlier source package is dropped. The `--sections` largest sections are kept (with
`contrib/` and `non-free/` prefixes stripped), each sampled to at most `--per-section` rows
with a fixed seed, and the rows shuffled with that seed. Output: {"text", "label", "package"}
a line; prints each section's count and the file's sha256 (no timestamps: equal lists give an
equal sha256).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_corpus import Refused, packages_lists, read_list, sha256_file

DEFAULT_OUT = Path(".edgepack/data/debian-sections.jsonl")


def stanzas(text: str) -> list[dict[str, str]]:
    """The fields of each stanza of a Packages list (continuation lines dropped)."""
    out = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields.get("Package") and fields.get("Section") and fields.get("Description"):
            out.append(fields)
    return out


def one_per_source(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """A row per source package: the binary named like it, else its first binary by name."""
    by_source: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_source.setdefault(r.get("Source", r["Package"]).split()[0], []).append(r)
    picked = []
    for source in sorted(by_source):
        binaries = sorted(by_source[source], key=lambda r: (r["Package"] != source, r["Package"]))
        picked.append(binaries[0])
    return picked


def build(root: Path, sections: int, per_section: int, seed: int) -> list[dict[str, str]]:
    lists = packages_lists(root)
    if not lists:
        raise Refused(
            f"no release Packages list in {root}/var/lib/apt/lists: run apt-get update (as "
            "root) to fetch the package lists"
        )
    rows = [s for path in lists for s in stanzas(read_list(path))]
    seen_names: set[str] = set()
    unique = []
    for r in sorted(rows, key=lambda r: r["Package"]):  # one stanza a name, whatever the lists
        if r["Package"] not in seen_names:
            seen_names.add(r["Package"])
            unique.append(r)
    seen_texts: set[str] = set()
    labelled = []
    for r in one_per_source(unique):
        text, section = r["Description"], r["Section"].rsplit("/", 1)[-1]
        if text.lower() not in seen_texts:
            seen_texts.add(text.lower())
            labelled.append({"text": text, "label": section, "package": r["Package"]})
    counts = Counter(r["label"] for r in labelled)
    kept = sorted(s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:sections])
    out = []
    for section in kept:
        group = [r for r in labelled if r["label"] == section]
        random.Random(f"{seed}:{section}").shuffle(group)
        out += group[:per_section]
    random.Random(seed).shuffle(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help=f"[{DEFAULT_OUT}]")
    ap.add_argument("--sections", type=int, default=16, help="the largest N sections [16]")
    ap.add_argument("--per-section", type=int, default=1000, help="rows a section at most [1000]")
    ap.add_argument("--seed", type=int, default=0, help="sampling and shuffle seed [0]")
    ap.add_argument("--root", type=Path, default=Path("/"), help="file-system root to read [/]")
    args = ap.parse_args(argv)
    if args.sections < 2 or args.per_section < 1:
        print("error: --sections needs at least 2 and --per-section at least 1", file=sys.stderr)
        return 2
    try:
        rows = build(args.root, args.sections, args.per_section, args.seed)
    except Refused as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)  # never a half-written file under the final name
    counts = Counter(r["label"] for r in rows)
    print(", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    print(f"{args.out}: {len(rows)} packages in {len(counts)} sections")
    print(f"sha256 {sha256_file(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

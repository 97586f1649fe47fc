"""`pip install .` gives a working tool (issue 12): the distribution carries its own device
runtime and the bundled recipes; scripts/check_fresh_install.sh does the whole thing in a fresh
venv (torch pinned first) and runs build, verify and run from an unrelated folder."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the check is the same on any version
ROOT = Path(__file__).resolve().parent.parent


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_the_distribution_lists_every_package_and_maps_in_the_runtime_and_recipes():
    # main: `pip install .` gave a tool whose verify and run said edgepack_runtime is missing.
    conf = _setuptools()
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "packager").rglob("__init__.py")
    }
    listed = set(conf["packages"])
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert {"edgepack_runtime", "packager.recipes"} <= listed
    dirs = conf["package-dir"]
    assert (ROOT / dirs["edgepack_runtime"] / "__init__.py").is_file()
    assert (ROOT / dirs["packager.recipes"] / "digits.yaml").is_file()
    # the runtime stays a distribution of its own
    assert (ROOT / "runtimes/python/pyproject.toml").is_file()


@pytest.mark.slow
def test_the_wheel_holds_the_runtime_the_recipes_and_the_target_profiles(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("edgepack-*.whl"))).namelist())
    runtime = {p.name for p in (ROOT / "runtimes/python/edgepack_runtime").glob("*.py")}
    assert {f"edgepack_runtime/{n}" for n in runtime} <= names
    assert {"packager/recipes/digits.yaml", "packager/bench/targets/rpi5.yaml"} <= names
    assert "packager/stages/quantize.py" in names

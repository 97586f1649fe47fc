"""The README's Python snippet is runtimes/python/examples/predict.py, and it works as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "runtimes" / "python" / "examples" / "predict.py"


def _python_block(page: str, heading: str) -> str:
    section = (REPO / page).read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize(
    ("page", "heading"),
    [("README.md", "## Use the package"), ("docs/how-to/use-the-package.md", "### Python")],
)
def test_the_readme_and_docs_snippets_are_the_tested_example_verbatim(page, heading):
    code = EXAMPLE.read_text().split('"""', 2)[2].lstrip("\n")  # the example minus its docstring
    assert _python_block(page, heading) == code


@pytest.mark.slow
def test_the_example_predicts_a_label_from_a_built_package(tiny_build, tmp_path):
    (tmp_path / "dist").mkdir()
    shutil.copyfile(tiny_build.package_path, tmp_path / "dist" / "digits.edgepack")
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    label, score = out.stdout.split()
    assert label in [str(i) for i in range(10)] and 0.1 <= float(score) <= 1.0

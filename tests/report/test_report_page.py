"""The report a person opens first: `dist/NAME.report.html` beside the package (and inside it),
rendered by headless Chromium (Debian's `chromium`, scripts/setup_system.sh): it loads without a
console error, every plot is drawn, no section is empty, and its models table carries the
metric, params and size; a screenshot of it is not blank (issue 29)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# Put first in <head> of a copy of the page: records errors and console.error calls, then on
# load writes how many images were decoded into the DOM that --dump-dom prints.
PROBE = """<script>
window.__errors=[];
window.addEventListener('error',e=>window.__errors.push(String(e.message||(e.target&&e.target.src)||e)),true);
const ce=console.error;console.error=(...a)=>{window.__errors.push(a.join(' '));ce(...a)};
window.addEventListener('load',()=>{const im=[...document.images];document.body.setAttribute(
'data-check',JSON.stringify({images:im.length,drawn:im.filter(i=>i.complete&&i.naturalWidth>0).length,
errors:window.__errors}))});
</script>"""


@pytest.fixture(scope="module")
def built(cache_dir, tmp_path_factory):
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    out = tmp_path_factory.mktemp("dist")
    bench = {"threads": [1, 2], "targets": ["host", "rpi4"], "runs": 5, "warmup": 1}
    recipe = tiny_recipe(package={"out_dir": str(out)}, bench=bench)
    return build(recipe, cache_dir=cache_dir, reporter=SilentReporter()), out


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (bash scripts/setup_system.sh)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # fresh each run
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_report_is_published_beside_the_package_and_inside_it(built):
    result, out = built
    beside = out / "digits-tiny.report.html"
    assert result.package_path == out / "digits-tiny.edgepack" and beside.is_file()
    inside = zipfile.ZipFile(result.package_path).read("report.html").decode()
    assert inside == beside.read_text()


def test_the_report_has_no_empty_section_and_its_table_carries_metric_params_and_size(built):
    _, out = built
    html = (out / "digits-tiny.report.html").read_text()
    assert "not enough data" not in html
    heads = re.findall(r"<h2>([^<]*)</h2>", html)
    assert {"Models", "Latency distribution per model", "All results"} <= set(heads)
    assert "Targets: estimated latency and its band" in heads and "Threads scaling" in heads
    models = html.split("<table class='models'>", 1)[1].split("</table>", 1)[0]
    for text in ("accuracy", "params", "size KiB", "teacher_fp32", "student_int8"):
        assert text in models
    plots = [h for h in heads if h not in ("Warnings", "Models", "All results")]
    assert html.count("data:image/png;base64,") == len(plots)  # every plot section has one


def test_chromium_loads_the_report_without_console_errors_and_draws_every_plot(built, tmp_path):
    _, out = built
    page = tmp_path / "report.html"
    page.write_text(
        (out / "digits-tiny.report.html").read_text().replace("<head>", "<head>" + PROBE, 1)
    )
    proc = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'data-check="([^"]*)"', proc.stdout)
    assert found, proc.stdout[-500:]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["errors"] == [] and check["images"] >= 4
    assert check["drawn"] == check["images"]
    assert not [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln and "rror" in ln]


def test_a_screenshot_of_the_report_shows_a_page_not_a_blank(built, tmp_path):
    from PIL import Image

    _, out = built
    shot = tmp_path / "report.png"
    proc = _chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1200,2400",
        (out / "digits-tiny.report.html").as_uri(),
    )  # fmt: skip
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2400, 1200)
    assert pixels.std() > 20  # text, tables and plots, not an empty white page
    assert (pixels < 128).mean() > 0.01  # enough dark ink to be the report's text and lines

"""`edgepack auto` from the command line: bad inputs are one `error:` line and a non-zero exit,
never a traceback; a tiny search end to end writes a package whose manifest records it."""

from __future__ import annotations

import json
import zipfile

import pytest
import yaml
from click.testing import CliRunner
from tiny_models import tiny_recipe_dict

from packager.cli import cli

_DIGITS = ("models/digits.yaml", "--target")


def _run(*args):
    return CliRunner().invoke(cli, ["auto", *args])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["models/digits.yaml", "--target", "nowhere", "--latency-ms", "1"], "unknown target"),
        (["models/digits.yaml", "--target", "ssh://", "--latency-ms", "1"], "ssh://"),
        (["models/nope.yaml", "--target", "rpi4", "--latency-ms", "1"], "file not found"),
        (
            [
                "models/digits.yaml",
                "--target",
                "rpi4",
                "--latency-ms",
                "1",
                "--max-drop",
                "0.1",
                "--min-metric",
                "0.9",
            ],
            "not both",
        ),
        (
            [
                "models/digits.yaml",
                "--target",
                "host",
                "--latency-ms",
                "1",
                "--set",
                "auto.fidelity=[0.5]",
            ],
            "the last one 1.0",
        ),
        (
            [
                "models/digits.yaml",
                "--target",
                "rpi4",
                "--latency-ms",
                "1",
                "--set",
                "auto.student={depth: [1]}",
            ],
            "not a field of distill.student",
        ),
        (["models/tiny-lm.yaml", "--target", "rpi4", "--latency-ms", "1"], "not searched"),
        (
            [*_DIGITS, "host", "--latency-ms", "1", "--set", "auto.threads=[1, 4096]"],
            "4096 is more than this host's",
        ),
        (
            [*_DIGITS, "rpi4", "--latency-ms", "1", "--set", "auto.threads=[8]"],
            "8 is more than rpi4's 4 cores",
        ),
    ],
)
def test_bad_inputs_are_one_error_line(args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is written next to the caller's files
    result = _run(*args, "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error:") and says in lines[-1], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "cache" / "calibrate").exists()  # refused before any work


def test_a_tiny_search_builds_a_package_that_records_it(tmp_path, cache_dir, tiny_build):
    recipe = tiny_recipe_dict(
        package={"out_dir": str(tmp_path / "dist")},
        bench={"enabled": False},
        auto={
            "student": {"hidden": [8, 16]},
            "quantize": ["static", "none"],
            "threads": [1],
            "fidelity": [0.5, 1.0],
            "top_k": 2,
        },
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    from packager.progress import SilentReporter
    from packager.search.auto import auto
    from packager.search.constraints import Constraints

    c = Constraints(latency_ms=1.0, max_drop=0.5)
    res = auto(path, "rpi4", c, cache_dir=cache_dir, reporter=SilentReporter(),
               quick_calibration=True)  # fmt: skip
    with zipfile.ZipFile(res.package_path) as z:
        manifest = json.loads(z.read("manifest.json"))
        html = z.read("report.html").decode()
    search = manifest["search"]
    assert search["pick"]["id"] in search["front"] and search["misses"] == []
    assert {t["phase"] for t in search["trials"]} == {"cost", "train"}
    assert search["constraints"]["latency_ms"] == 1.0 and "why" in search
    assert all(t["label"] == "estimated" for t in search["trials"])
    assert "edgepack auto: the search" in html and "data:image/png;base64" in html
    again = auto(path, "rpi4", c, cache_dir=cache_dir, reporter=SilentReporter(),
                 quick_calibration=True)  # fmt: skip
    assert again.run.ran == [] and again.record == res.record  # a rerun runs nothing

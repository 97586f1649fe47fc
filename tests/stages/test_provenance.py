"""The provenance stage: the teacher and data as given, and the gate (provenance.policy,
--accept-terms) before anything is trained; a llama3 teacher end to end through the CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from packager.errors import RecipeError
from packager.progress import SilentReporter


class _Warnings(SilentReporter):
    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _teacher(root: Path, license_line: str | None, tiny_classifier: Path) -> Path:
    """A copy of the tiny classifier whose card says `license_line` (or has no card)."""
    import shutil

    folder = root / (license_line or "nolicense").replace(": ", "-")
    if not folder.exists():
        shutil.copytree(tiny_classifier, folder)
        if license_line:
            (folder / "README.md").write_text(f"---\n{license_line}\n---\n# tiny teacher\n")
    return folder


def _recipe(teacher: Path, data: Path, out: Path, **provenance) -> dict:
    from tiny_models import tiny_text_recipe_dict

    return tiny_text_recipe_dict(
        str(data),
        str(teacher),
        name="topics",
        bench={"enabled": False},
        package={"out_dir": str(out)},
        provenance=provenance,
    )


def _gate(recipe: dict, cache: Path):
    """Only the provenance step of the build plan: (its artifact, the warnings shown)."""
    from packager.pipeline import run
    from packager.plans import build_plan
    from packager.recipe import build_recipe

    reporter = _Warnings()
    steps = build_plan(build_recipe(recipe))
    assert steps[0].name == "provenance"  # first: nothing is trained before the gate
    result = run(steps[:1], cache_dir=cache, reporter=reporter)
    return result.artifact("provenance"), reporter.warnings


def test_an_apache_teacher_passes_quietly(tmp_path, tiny_classifier, tiny_texts_file):
    teacher = _teacher(tmp_path, "license: apache-2.0", tiny_classifier)
    art, warnings = _gate(_recipe(teacher, tiny_texts_file, tmp_path, policy="strict"), tmp_path)
    assert warnings == [] and art.meta["gate"]["outcome"] == "quiet"
    assert art.meta["teacher"]["license"]["id"] == "apache-2.0"
    assert art.meta["package_name"] == "topics"


def test_a_teacher_without_license_information_warns_unknown(
    tmp_path, tiny_classifier, tiny_texts_file
):
    teacher = _teacher(tmp_path, None, tiny_classifier)
    art, warnings = _gate(_recipe(teacher, tiny_texts_file, tmp_path), tmp_path)
    assert art.meta["gate"]["outcome"] == "warned"
    assert len(warnings) == 1 and "license unknown" in warnings[0]


def test_llama3_warns_under_warn_and_stops_under_strict_with_exit_2(
    tmp_path, tiny_classifier, tiny_texts_file
):
    teacher = _teacher(tmp_path, "license: llama3", tiny_classifier)
    art, warnings = _gate(_recipe(teacher, tiny_texts_file, tmp_path), tmp_path)
    assert art.meta["gate"]["outcome"] == "warned"
    assert "any output or results of the Llama Materials" in warnings[0]
    with pytest.raises(RecipeError) as err:
        _gate(_recipe(teacher, tiny_texts_file, tmp_path, policy="strict"), tmp_path)
    assert err.value.exit_code == 2 and "--accept-terms llama3" in str(err.value)


def test_acceptance_is_in_the_key_and_its_time_is_not(tmp_path, tiny_classifier, tiny_texts_file):
    from packager.plans import build_plan
    from packager.recipe import build_recipe

    teacher = _teacher(tmp_path, "license: llama3", tiny_classifier)
    base = _recipe(teacher, tiny_texts_file, tmp_path, policy="strict", accept_terms=["llama3"])
    first, _ = _gate(base, tmp_path / "cache")
    again, _ = _gate(base, tmp_path / "cache")
    assert again.path == first.path  # cached: the recorded time does not break the key
    assert again.meta["gate"]["accepted"][0]["at"] == first.meta["gate"]["accepted"][0]["at"]
    key = lambda r: build_plan(build_recipe(r))[0].config.digest()  # noqa: E731
    for other in ({"accept_terms": []}, {"policy": "warn"}):
        assert key({**base, "provenance": {**base["provenance"], **other}}) != key(base)


def _cli(*args: str):
    from click.testing import CliRunner

    from packager.cli import cli

    return CliRunner().invoke(cli, list(args))


@pytest.mark.slow
def test_a_llama3_teacher_builds_only_once_its_terms_are_accepted_and_records_it(
    tmp_path, text_root, tiny_classifier, tiny_texts_file
):
    teacher = _teacher(text_root / "llama3-teacher", "license: llama3", tiny_classifier)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(teacher, tiny_texts_file, tmp_path, policy="strict")))
    cache = str(text_root / "cache")
    refused = _cli("build", str(recipe), "--cache-dir", cache, "-q")
    assert refused.exit_code == 2
    errors = [ln for ln in refused.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "--accept-terms llama3" in errors[0]
    assert "Traceback" not in refused.output
    ok = _cli("build", str(recipe), "--cache-dir", cache, "-q", "--accept-terms", "llama3")
    assert ok.exit_code == 0, ok.output
    path = tmp_path / "Llama-3-topics.edgepack"  # the naming duty, applied to the package
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        card = zf.read("README.md").decode()
    prov = manifest["provenance"]
    (accepted,) = prov["accepted"]
    assert accepted["terms"] == "llama3" and accepted["flag"] == "--accept-terms llama3"
    assert accepted["at"].endswith("Z") and prov["policy"] == "strict"
    assert "Terms accepted: `llama3`" in card and "--accept-terms llama3" in card
    assert "**Built with Meta Llama 3**" in card and card.startswith("---\nlicense: llama3\n")
    assert (
        prov["student_init"]["kind"] == "derived" and prov["teacher"]["license"]["id"] == "llama3"
    )
    shown = _cli("inspect", str(path), "--provenance")
    assert shown.exit_code == 0, shown.output
    assert "accepted llama3" in shown.output and "student derived" in shown.output


def test_naming_report_keeps_the_name_and_warns_that_the_duty_is_yours(
    tmp_path, tiny_classifier, tiny_texts_file
):
    teacher = _teacher(tmp_path, "license: llama3.1", tiny_classifier)
    recipe = _recipe(teacher, tiny_texts_file, tmp_path, naming="report", accept_terms="llama3.1")
    art, warnings = _gate(recipe, tmp_path)
    assert art.meta["package_name"] == "topics"
    assert any('"Llama" at the beginning' in w and "rename it" in w for w in warnings)
    applied, _ = _gate(
        _recipe(teacher, tiny_texts_file, tmp_path, accept_terms="llama3.1"), tmp_path
    )
    assert applied.meta["package_name"] == "Llama-topics"

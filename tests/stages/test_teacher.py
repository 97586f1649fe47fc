"""teacher stage: builtin training and python: factories with safe weight loading."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file
from tiny_models import make_tiny_net, tiny_recipe

from packager.errors import InputFileError, RecipeError
from packager.pipeline import run
from packager.plans import build_plan
from packager.progress import SilentReporter


def _teacher(tmp_path, **teacher):
    recipe = tiny_recipe(teacher=teacher)
    steps = [s for s in build_plan(recipe) if s.name in ("data", "teacher")]
    return run(steps, cache_dir=tmp_path / "c", reporter=SilentReporter()).artifact("teacher")


def test_builtin_teacher_is_trained_and_recorded(tiny_build):
    t = tiny_build.artifact("teacher")
    assert t.kind == "torch" and t.meta["trained"] is True
    assert t.meta["val_accuracy"] > 0.8
    assert len(t.meta["curve"]) == 4


def _reference_weights():
    ref = make_tiny_net()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(1.0)  # differ from the factory's init so loading is observable
    return ref


def test_python_teacher_loads_safetensors_weights(tmp_path):
    ref = _reference_weights()
    save_file(ref.state_dict(), str(tmp_path / "w.safetensors"))
    art = _teacher(
        tmp_path,
        source="python:tiny_models:make_tiny_net",
        weights=str(tmp_path / "w.safetensors"),
        kwargs={},
        train={},
    )
    from safetensors.torch import load_file

    got = load_file(str(art.file()))
    assert torch.equal(got["net.1.weight"], ref.state_dict()["net.1.weight"])
    assert art.meta["factory"] == "tiny_models:make_tiny_net"


def test_python_teacher_reads_pt_with_weights_only(tmp_path):
    ref = _reference_weights()
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    art = _teacher(
        tmp_path,
        source="python:tiny_models:make_tiny_net",
        weights=str(tmp_path / "w.pt"),
        kwargs={},
    )
    assert art.meta["params"] == sum(p.numel() for p in ref.parameters())


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_in_a_pt_file_is_refused(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    with pytest.raises(InputFileError, match=r"teacher\.weights .*evil\.pt: cannot read"):
        _teacher(
            tmp_path,
            source="python:tiny_models:make_tiny_net",
            weights=str(tmp_path / "evil.pt"),
            kwargs={},
        )


def test_weights_that_do_not_fit_are_a_one_line_error(tmp_path):
    save_file(make_tiny_net(hidden=5).state_dict(), str(tmp_path / "w.safetensors"))
    with pytest.raises(InputFileError, match="do not fit the model"):
        _teacher(
            tmp_path,
            source="python:tiny_models:make_tiny_net",
            weights=str(tmp_path / "w.safetensors"),
            kwargs={},
        )


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("python:no_such_module:f", "cannot import module"),
        ("python:tiny_models:nothing_here", "has no callable"),
        ("python:tiny_models:not_a_module", "not a torch.nn.Module"),
        ("builtin:resnet", "builtin teachers are: builtin:digits-cnn"),
    ],
)
def test_bad_teacher_sources_are_one_line_errors(tmp_path, source, match):
    with pytest.raises(RecipeError, match=match):
        _teacher(tmp_path, source=source, kwargs={})


def test_a_python_teachers_module_is_importable_in_every_later_step_cached_or_not(
    tmp_path, monkeypatch
):
    # main: the module's folder joined sys.path only while the teacher step itself ran, so a
    # later step after a cached teacher failed with "cannot import module".
    import sys

    from packager.recipe import load_recipe

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "effnet_issue12.py").write_text(
        "from tiny_models import TinyNet\n\ndef make():\n    return TinyNet(hidden=12)\n"
    )
    (proj / "r.yaml").write_text(
        "teacher: {source: 'python:effnet_issue12:make'}\n"
        "data: {source: 'builtin:digits', limit: 200}\n"
        "export: {atol: 0.001}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    recipe = load_recipe(proj / "r.yaml")
    steps = {s.name: s for s in build_plan(recipe)}
    cache = tmp_path / "cache"
    run([steps["data"], steps["teacher"]], cache_dir=cache, reporter=SilentReporter())
    # A new process: nothing of the first run's imports survives.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(proj.resolve())])
    sys.modules.pop("effnet_issue12", None)
    plan = [steps["data"], steps["teacher"], steps["export_teacher"]]
    result = run(plan, cache_dir=cache, reporter=SilentReporter())
    assert [r.status for r in result.steps] == ["cached", "cached", "done"]
    assert result.artifact("teacher").meta["import_path"] == str(proj.resolve())

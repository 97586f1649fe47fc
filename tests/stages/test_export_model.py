"""export_model stage: one step through the runner, cached by the content of its source."""

from __future__ import annotations

import pytest

from packager.config import ExportModelConfig, ModelInput
from packager.errors import RecipeError
from packager.pipeline import run
from packager.plans import export_plan
from packager.progress import SilentReporter

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cfg(tmp_path, **extra) -> ExportModelConfig:
    module = tmp_path / "mynets.py"
    if not module.exists():
        module.write_text("from tiny_models import make_tiny_cnn as make\n")
    fields = {
        "source": "python:mynets:make",
        "import_path": str(tmp_path),
        "inputs": [ModelInput.parse("x:batch,3,height,width")],
        "dims": {"height": 16, "width": 16},
    }
    return ExportModelConfig(**{**fields, **extra})


def test_the_export_step_runs_once_and_its_module_file_is_in_the_key(tmp_path):
    cache = tmp_path / "cache"
    first = run(export_plan(_cfg(tmp_path)), cache_dir=cache, reporter=SilentReporter())
    art = first.artifact("export")
    assert art.kind == "onnx" and art.meta["exporter"] == "torch.onnx.export(dynamo=False)"
    assert [r["inputs"]["x"] for r in art.meta["parity"]] == [
        [2, 3, 16, 16], [1, 3, 24, 24], [3, 3, 32, 32]
    ]  # fmt: skip
    assert art.meta["guessed_dims"] == {} and art.meta["external_data"] is None
    again = run(export_plan(_cfg(tmp_path)), cache_dir=cache, reporter=SilentReporter())
    assert again.steps[0].status == "cached"
    (tmp_path / "mynets.py").write_text(
        "from tiny_models import make_tiny_cnn\n\ndef make():\n    return make_tiny_cnn(4)\n"
    )
    edited = run(export_plan(_cfg(tmp_path)), cache_dir=cache, reporter=SilentReporter())
    assert edited.steps[0].status == "done"  # the factory's source changed: a new key


def test_a_dim_nobody_gave_is_guessed_and_recorded(tmp_path):
    art = run(
        export_plan(_cfg(tmp_path, dims={})), cache_dir=tmp_path / "c", reporter=SilentReporter()
    ).artifact("export")
    assert art.meta["guessed_dims"] == {"height": 32, "width": 32}


def test_configs_that_do_not_fit_their_source_are_refused():
    with pytest.raises(ValueError, match="needs its inputs"):
        ExportModelConfig(source="python:m:f")
    with pytest.raises(ValueError, match="for python: factories"):
        ExportModelConfig(source="hf:/x", inputs=[ModelInput.parse("x:1,3")])
    with pytest.raises(ValueError, match="dynamo=True"):
        ExportModelConfig(source="/m.pt2")
    with pytest.raises(ValueError, match="symbolic dim"):
        ModelInput.parse("x:b-1,3")
    assert RecipeError  # the CLI maps these to one `error:` line (tests/export)

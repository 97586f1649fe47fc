"""The house rules of docs/architecture.md, checked: no import cycle, small functions and files,
every stage registered with a test module and a config that round-trips, and every field a stage
can read in its cache key."""

from __future__ import annotations

import ast
import inspect
import json
import warnings
from pathlib import Path

import pytest

import packager.pipeline  # noqa: F401  (registers every stage)
from packager import config as config_pkg
from packager.config import Config
from packager.plans import (
    bench_plan,
    build_plan,
    calibrate_step,
    export_plan,
    quantize_plan,
    sketch_plan,
)
from packager.recipe import REPO_MODELS, Recipe, list_recipes, load_recipe
from packager.stage import registered

ROOT = Path(__file__).resolve().parent.parent
PACKAGER = ROOT / "packager"


def _import_graph():
    import grimp

    return grimp.build_graph("packager", include_external_packages=False)


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), plus self-imports."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.find_modules_directly_imported_by(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.find_modules_directly_imported_by(v):
                found.append(sorted(comp))

    for m in modules:
        if m not in index:
            visit(m)
    return found


def test_no_module_of_packager_sits_in_an_import_cycle():
    # grimp reads every import statement, function-level ones included: a lazy import that
    # closes a loop is still a loop.
    graph = _import_graph()
    assert len(graph.modules) > 50
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    class Fake:
        modules = ("a", "b", "c")

        def find_modules_directly_imported_by(self, m):
            return {"a": {"b"}, "b": {"a"}, "c": set()}[m]

    assert _cycles(Fake()) == [["a", "b"]]


def test_no_function_over_80_lines_and_no_file_over_400():
    long_files, long_functions = [], []
    for path in sorted(PACKAGER.rglob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 400:
            long_files.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())}")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name}: {n}")
    assert long_files == [] and long_functions == []


def test_every_registered_stage_has_its_own_test_module():
    stages = {
        spec.name for spec in registered().values() if spec.fn.__module__.startswith("packager.")
    }
    assert {"data", "teacher", "distill", "export", "quantize", "evaluate", "package"} <= stages
    missing = [s for s in sorted(stages) if not (ROOT / "tests/stages" / f"test_{s}.py").is_file()]
    assert missing == []


def test_each_stage_lives_in_its_own_file_under_stages():
    for spec in registered().values():
        if not spec.fn.__module__.startswith("packager."):
            continue  # a test's own stage
        assert spec.fn.__module__ == f"packager.stages.{spec.name}", spec.name


def _plan_configs(tmp_path: Path) -> list[Config]:
    """A config of every kind a plan can build: every recipe in models/, plus the single-stage
    commands' plans."""
    out: list[Config] = []
    for path, _ in list_recipes():
        out += [s.config for s in build_plan(load_recipe(path))]
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not checked at plan time")
    quantize = load_recipe(REPO_MODELS / "digits.yaml")
    calibrated = quantize.quantize.model_copy(update={"calib": str(tmp_path / "calib.npz")})
    out += [
        s.config
        for s in quantize_plan(
            model, calibrated, quantize.optimize.model_copy(update={"slim": True})
        )
    ]
    pkg = tmp_path / "p.edgepack"
    pkg.write_bytes(b"zip")
    out += [s.config for s in bench_plan([model, pkg], quantize.bench)]
    from packager.config import ExportModelConfig, ModelInput

    export = ExportModelConfig(
        source="python:tiny_models:make_tiny_cnn",
        inputs=[ModelInput.parse("x:batch,3,height,width")],
        weights=str(tmp_path / "w.safetensors"),
        feeds=str(tmp_path / "f.npz"),
        import_path=str(tmp_path),
    )
    out += [s.config for s in export_plan(export)]
    out += [s.config for s in sketch_plan(quantize)] + [calibrate_step().config]  # edgepack auto
    return out


def _nested(cfg: Config):
    yield cfg
    for name in type(cfg).model_fields:
        value = getattr(cfg, name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Config):
                yield from _nested(item)


def test_every_config_a_plan_builds_round_trips_through_json(tmp_path):
    for cfg in _plan_configs(tmp_path):
        again = type(cfg).model_validate(json.loads(json.dumps(cfg.to_json())))
        assert again == cfg and again.digest() == cfg.digest()


def test_every_config_class_is_reachable_from_a_recipe_or_a_plan(tmp_path):
    defined = {
        obj
        for _, module in inspect.getmembers(config_pkg, inspect.ismodule)
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Config)
        and obj is not Config
        and obj.__module__.startswith("packager.config")
    }
    reached = {type(c) for cfg in _plan_configs(tmp_path) for c in _nested(cfg)}
    for name in ("minilm-l6.yaml", "api-embed.yaml"):  # an HF teacher, an API teacher
        reached |= {type(c) for c in _nested(load_recipe(REPO_MODELS / name))} - {Recipe}
    reached |= {type(c) for c in _nested(Recipe())} - {Recipe}
    reached |= {base for c in reached for base in c.__mro__}  # a scheme's base: its shared part
    # an option off by default, reached by the --set that docs/results-text.md gives
    augmented = load_recipe(REPO_MODELS / "minilm-l6-static.yaml", ("data.augment.copies=1",))
    reached |= {type(c) for c in _nested(augmented)} - {Recipe}
    assert defined - reached == set()


def _changed(value):
    """A different value of the same kind, for proving that a field reaches the key."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, tuple | list):
        return (*value, value[0]) if value else ("x",)
    if isinstance(value, dict):
        return {**value, "changed": 1}
    return "changed"  # None or a nested config: any other value differs


def _key(cfg: Config) -> str:
    from packager.cache import stage_key

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # model_copy skips validation: serializer warnings
        return stage_key("s", 1, cfg.key_json(), [])


def test_changing_any_keyed_field_of_any_stage_config_changes_its_key(tmp_path):
    seen = set()
    for cfg in _plan_configs(tmp_path):
        if type(cfg) in seen:
            continue
        seen.add(type(cfg))
        base = _key(cfg)
        for name in type(cfg).model_fields:
            if name in type(cfg).unkeyed:
                assert _key(cfg.model_copy(update={name: _changed(getattr(cfg, name))})) == base
                continue
            changed = cfg.model_copy(update={name: _changed(getattr(cfg, name))})
            assert _key(changed) != base, f"{type(cfg).__name__}.{name} is not in the key"
    assert len(seen) >= 11


def _variants(cls: type) -> list[type]:
    """The classes a stage config may arrive as: a quantize: section is one scheme's class."""
    return [cls, *(v for sub in cls.__subclasses__() for v in _variants(sub))]


def _stage_modules() -> dict[str, tuple[Path, type]]:
    return {
        spec.name: (Path(inspect.getfile(spec.fn)), spec.config_type)
        for spec in registered().values()
        if spec.fn.__module__.startswith("packager.stages.")
    }


def _reads(path: Path) -> tuple[set[str], set[str]]:
    """(fields read as `cfg.X`, attributes read off `ctx`) anywhere in a stage module."""
    cfg_reads, ctx_reads = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "cfg":
                cfg_reads.add(node.attr)
            elif node.value.id == "ctx":
                ctx_reads.add(node.attr)
    return cfg_reads, ctx_reads


@pytest.mark.parametrize("stage", sorted(_stage_modules()))
def test_a_stage_reads_only_keyed_fields_of_its_config_and_never_the_recipe(stage):
    path, cfg_type = _stage_modules()[stage]
    cfg_reads, ctx_reads = _reads(path)
    for attr in cfg_reads:
        if attr in cfg_type.model_fields:
            assert attr not in cfg_type.unkeyed, f"{stage} reads unkeyed {attr}"
        elif not any(attr in v.model_fields for v in _variants(cfg_type)):
            # a property or method of the config, computed from its (keyed) fields
            assert hasattr(cfg_type, attr), f"{stage} reads cfg.{attr}, not a field of {cfg_type}"
    allowed = {"step", "workdir", "scratch", "inputs", "reporter", "records", "log", "warn"}
    assert ctx_reads <= allowed
    assert "recipe" not in ctx_reads


def test_switching_the_task_changes_every_key_that_depends_on_it(tmp_path):
    """The task is read by the teacher, teacher_outputs (pooled embedding or logits), distill,
    evaluate and package stages: it is in each of their configs, so a text-classification build
    never reuses a feature-extraction one."""
    base = load_recipe(REPO_MODELS / "minilm-l6.yaml")
    other = base.model_copy(update={"task": "text-classification"})
    a = {s.name: _key(s.config) for s in build_plan(base)}
    b = {s.name: _key(s.config) for s in build_plan(other)}
    changed = {n for n in a if a[n] != b[n]}
    assert changed == {"teacher", "teacher_outputs", "distill", "evaluate", "package"}


def test_trimming_the_vocabulary_reuses_the_trained_student():
    """trim_vocab is its own step after distill: changing it keys that step, not distill."""
    base = load_recipe(REPO_MODELS / "minilm-l6-speed.yaml")
    other = base.model_copy(update={"distill": base.distill.model_copy(update={"trim_vocab": 5})})
    a = {s.name: _key(s.config) for s in build_plan(base)}
    b = {s.name: _key(s.config) for s in build_plan(other)}
    assert a["distill"] == b["distill"]
    assert a["trim_vocab"] != b["trim_vocab"]

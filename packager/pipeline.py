"""The one runner: plan the steps of a recipe, look each up in the cache, run what is missing.

Every command (build, quantize, bench, ...) compiles to a Recipe and comes through `run`.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.cache import Cache, publish_file, stage_key
from packager.errors import EdgepackError, RecipeError, StageError
from packager.progress import Reporter
from packager.recipe import Config, Recipe
from packager.stage import Artifact, StageContext, stage_for


@dataclass(frozen=True)
class Step:
    name: str
    config: Config
    inputs: tuple[str, ...] = ()
    extra: str = ""  # folded into the key, e.g. the whole recipe for the package step


@dataclass
class StepResult:
    step: Step
    stage: str
    key: str | None
    status: str  # "cached" | "done" | "pending" | "skipped"
    artifact: Artifact | None = None
    seconds: float = 0.0


@dataclass
class RunResult:
    recipe: Recipe
    steps: list[StepResult] = field(default_factory=list)
    package_path: Path | None = None
    seconds: float = 0.0

    def artifact(self, name: str) -> Artifact:
        for r in self.steps:
            if r.step.name == name and r.artifact is not None:
                return r.artifact
        raise KeyError(name)

    @property
    def ran(self) -> list[str]:
        return [r.step.name for r in self.steps if r.status == "done"]


def plan(recipe: Recipe) -> list[Step]:
    """The build DAG, in topological order."""
    if recipe.quantize.mode == "none" and recipe.package.model == "int8":
        raise RecipeError(
            "recipe: package.model = int8 ships the quantized model; set quantize.mode to "
            "static, dynamic, fp16 or int4, or package.model = fp32"
        )
    from packager.data.text import source_fingerprint
    from packager.sources.hf import fingerprint

    # Recipes name files and folders by path; their content stamps join the keys so an edited
    # corpus or teacher folder reruns what depends on it.
    steps = [
        Step("data", recipe.data, extra=source_fingerprint(recipe.data.source)),
        Step("teacher", recipe.teacher, ("data",), extra=fingerprint(recipe.teacher.source)),
        Step("export_teacher", recipe.export, ("teacher", "data")),
        Step("distill", recipe.distill, ("teacher", "data")),
        Step("export", recipe.export, ("distill", "data")),
    ]
    variants = ["export_teacher", "export"]
    upstream = "export"
    if recipe.optimize.enabled:  # off by default: see OptimizeConfig and the README
        steps.append(Step("optimize", recipe.optimize, ("export",)))
        upstream = "optimize"
    if recipe.quantize.mode != "none":
        from packager.quantize.data import data_files_digest

        steps.append(
            Step(
                "quantize",
                recipe.quantize,
                (upstream, "data"),
                extra=data_files_digest(recipe.quantize),
            )
        )
        variants.append("quantize")
    steps.append(Step("evaluate", recipe.evaluate, (*variants, "data")))
    if recipe.bench.enabled:
        steps.append(Step("bench", recipe.bench, tuple(variants)))
    shipped = "quantize" if recipe.package.model == "int8" else "export"
    deps = [shipped, "data", "evaluate", "teacher", "distill"] + (
        ["bench"] if recipe.bench.enabled else []
    )
    steps.append(Step("package", recipe.package, tuple(deps), extra=recipe.digest()))
    return steps


def run(
    recipe: Recipe,
    *,
    cache_dir: str | Path | None = None,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    steps: list[Step] | None = None,
    publish: bool = True,
    sign_key: str | Path | None = None,
) -> RunResult:
    reporter = reporter or Reporter()
    if sign_key is not None and not dry_run:
        from packager.signing import read_private_key

        read_private_key(sign_key)  # a bad key fails now, not after a long build
    cache = Cache(cache_dir)
    cache.sweep()
    steps = steps if steps is not None else plan(recipe)
    result = RunResult(recipe=recipe)
    done: dict[str, Artifact] = {}
    records: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for step in steps:
        spec = stage_for(step.config)
        missing = [i for i in step.inputs if i not in done]
        if missing:
            # Only in a dry run: an upstream step would run, so this key cannot be known yet.
            result.steps.append(StepResult(step, spec.name, None, "pending"))
            continue
        inputs = {name: done[name] for name in step.inputs}
        cfg_json = step.config.to_json()
        key = stage_key(
            spec.name,
            spec.version,
            step.config.key_json(),
            [a.id for a in inputs.values()],
            step.extra,
        )
        record = {
            "step": step.name,
            "stage": spec.name,
            "key": key,
            "config": cfg_json,
            "inputs": {n: a.id for n, a in inputs.items()},
        }
        hit = cache.get(spec.name, key)
        if hit is not None:
            done[step.name] = hit
            records.append({**record, "output": hit.id})
            result.steps.append(StepResult(step, spec.name, key, "cached", hit))
            if not dry_run:
                reporter.stage(step.name, "cached")
            continue
        if dry_run:
            result.steps.append(StepResult(step, spec.name, key, "pending"))
            continue
        t0 = time.perf_counter()
        art = _run_step(step, spec, key, inputs, recipe, reporter, cache, record, records)
        seconds = time.perf_counter() - t0
        done[step.name] = art
        records.append({**record, "output": art.id})
        result.steps.append(StepResult(step, spec.name, key, "done", art, seconds))
        reporter.stage(step.name, "done", f"{seconds:.1f}s")
    if not dry_run and "package" in done and publish:
        pkg = done["package"]
        dest = Path(recipe.package.out_dir) / pkg.meta["file"]
        if sign_key is None:
            result.package_path = publish_file(pkg.file(), dest)
        else:
            # Signed while published, never in a stage: see packager/signing.py for why.
            from packager.signing import publish_signed

            result.package_path = publish_signed(pkg.file(), dest, sign_key)
    result.seconds = time.perf_counter() - t_start
    return result


def _run_step(step, spec, key, inputs, recipe, reporter, cache, record, records) -> Artifact:
    primary = inputs[step.inputs[0]] if step.inputs else None
    with cache.writing(spec.name, key) as tmp:
        ctx = StageContext(
            step=step.name,
            workdir=tmp,
            inputs=inputs,
            recipe=recipe,
            reporter=reporter,
            records=list(records),
        )
        try:
            out = spec.fn(primary, step.config, ctx)
        except EdgepackError:
            reporter.stage(step.name, "failed")
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bug or a library failure: one line, traceback kept on disk
            reporter.stage(step.name, "failed")
            log = cache.root / "last-error.txt"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise StageError(
                step.name, f"{type(exc).__name__}: {msg} (traceback in {log})"
            ) from exc
        return cache.commit(tmp, spec.name, key, out.kind, out.meta, record)

"""The one runner: look each step of a plan up in the cache, run what is missing, publish.

Every command (build, quantize, bench, ...) compiles to a plan (packager.plans) and comes
through `run`. This is the only module that imports packager.stages (which registers them).
"""

from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import packager.stages  # noqa: F401  (registers every stage)
from packager.artifact import Artifact
from packager.cache import Cache, stage_key
from packager.errors import EdgepackError, StageError, one_line
from packager.files import publish_file, refuse_overwrite
from packager.hashing import stamps
from packager.plans import build_plan
from packager.progress import Reporter
from packager.recipe import Recipe
from packager.stage import StageContext, StageSpec, Step, stage_for


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
    steps: list[StepResult] = field(default_factory=list)
    package_path: Path | None = None
    seconds: float = 0.0
    name: str = ""

    def artifact(self, name: str) -> Artifact:
        for r in self.steps:
            if r.step.name == name and r.artifact is not None:
                return r.artifact
        raise KeyError(name)

    @property
    def ran(self) -> list[str]:
        return [r.step.name for r in self.steps if r.status == "done"]


def step_key(step: Step, spec: StageSpec, inputs: dict[str, Artifact]) -> str:
    """hash(stage, its version, edgepack's version, the config, the content stamps of every
    path the config names, the input artifact ids by role, the step's extra)."""
    extra = "|".join(x for x in (stamps(step.config.input_paths()), step.extra) if x)
    return stage_key(
        spec.name,
        spec.version,
        step.config.key_json(),
        [f"{role}={a.id}" for role, a in inputs.items()],
        extra,
    )


def run(
    steps: list[Step],
    *,
    cache_dir: str | Path | None = None,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    publish: str | Path | None = None,
    sign_key: str | Path | None = None,
    sign_format: str = "ed25519",
    name: str = "",
    recipe_file: str | Path | None = None,
) -> RunResult:
    """Run `steps`; with `publish` (a folder), copy the `package` step's file there (signed
    with `sign_key` when given: `sign_format` ed25519 or model-signing, packager.signing),
    refusing to replace `recipe_file` or any file a step reads."""
    reporter = reporter or Reporter()
    if sign_key is not None and not dry_run:
        from packager.signing import read_private_key

        read_private_key(sign_key, sign_format)  # a bad key fails now, not after a long build
    cache = Cache(cache_dir)
    cache.sweep()
    result = RunResult(name=name)
    done: dict[str, Artifact] = {}
    records: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for step in steps:
        spec = stage_for(step.config)
        missing = [s for s in step.roles.values() if s not in done]
        if missing:
            # Only in a dry run: an upstream step would run, so this key cannot be known yet.
            result.steps.append(StepResult(step, spec.name, None, "pending"))
            continue
        inputs = {role: done[s] for role, s in step.roles.items()}
        key = step_key(step, spec, inputs)
        record = {
            "step": step.name,
            "stage": spec.name,
            "key": key,
            "config": step.config.to_json(),
            "inputs": {s: done[s].id for s in step.roles.values()},  # by step, as manifests say
        }
        hit = cache.get(spec.name, key, warn=reporter.warn, repair=not dry_run)
        if hit is not None or dry_run:
            status = "cached" if hit is not None else "pending"
            if hit is not None:
                done[step.name] = hit
                records.append({**record, "output": hit.id})
                if not dry_run:
                    reporter.stage(step.name, "cached")
            result.steps.append(StepResult(step, spec.name, key, status, hit))
            continue
        t0 = time.perf_counter()
        art = _run_step(step, spec, key, inputs, reporter, cache, record, records)
        seconds = time.perf_counter() - t0
        done[step.name] = art
        records.append({**record, "output": art.id})
        result.steps.append(StepResult(step, spec.name, key, "done", art, seconds))
        reporter.stage(step.name, "done", f"{seconds:.1f}s")
    if not dry_run and "package" in done and publish is not None:
        read = {f"{s.name}.{k}": v for s in steps for k, v in s.config.input_paths().items()}
        read["recipe"] = recipe_file
        result.package_path = _publish(done["package"], Path(publish), sign_key, read, sign_format)
    result.seconds = time.perf_counter() - t_start
    return result


def build(
    recipe: Recipe,
    *,
    cache_dir: str | Path | None = None,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    publish: bool = True,
    sign_key: str | Path | None = None,
    sign_format: str = "ed25519",
    recipe_file: str | Path | None = None,
) -> RunResult:
    """Run a recipe's build plan and publish its package to `package.out_dir` (never over
    `recipe_file`, the recipe's own file, nor any file a step reads)."""
    return run(
        build_plan(recipe),
        cache_dir=cache_dir,
        dry_run=dry_run,
        reporter=reporter,
        publish=recipe.package.out_dir if publish else None,
        sign_key=sign_key,
        sign_format=sign_format,
        name=recipe.name,
        recipe_file=recipe_file,
    )


def _publish(pkg: Artifact, out_dir: Path, sign_key, inputs: dict[str, str], sign_format) -> Path:
    """The package into `out_dir` (signed when asked), then its report beside it."""
    dest = out_dir / pkg.meta["file"]
    refuse_overwrite(dest, {**inputs, "signing key": sign_key}, "package.out_dir: the package")
    report = pkg.meta.get("report_html")
    if report:  # NAME.report.html: what a person opens first, without unzipping anything
        refuse_overwrite(out_dir / report, inputs, "package.out_dir: the report")
    published = _publish_package(pkg, dest, sign_key, inputs, sign_format)
    if report:
        publish_file(pkg.file(report), out_dir / report)
    return published


def _publish_package(pkg: Artifact, dest: Path, sign_key, inputs, sign_format) -> Path:
    if sign_key is None:
        return publish_file(pkg.file(), dest)
    # Signed while published, never in a stage: see packager/signing.py for why.
    from packager.signing import publish_model_signed, publish_signed

    if sign_format == "model-signing":
        refuse_overwrite(Path(f"{dest}.sig"), {**inputs, "signing key": sign_key}, "the signature")
        return publish_model_signed(pkg.file(), dest, sign_key)

    return publish_signed(pkg.file(), dest, sign_key)


def _keep_traceback(cache: Cache) -> str:
    """Write the traceback beside the cache for a bug report; a full or read-only disk must not
    turn one error line into two."""
    log = cache.root / "last-error.txt"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(traceback.format_exc())
    except OSError:
        return ""
    return f" (traceback in {log})"


def _run_step(step, spec, key, inputs, reporter, cache, record, records) -> Artifact:
    primary = next(iter(inputs.values())) if inputs else None
    scratch = cache.scratch(spec.name, key)
    with cache.writing(spec.name, key) as tmp:
        ctx = StageContext(
            step=step.name,
            workdir=tmp,
            inputs=inputs,
            reporter=reporter,
            records=list(records),
            scratch=scratch,
            cache_root=cache.root,
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
            raise StageError(
                step.name, f"{type(exc).__name__}: {one_line(exc)}{_keep_traceback(cache)}"
            ) from exc
        art = cache.commit(tmp, spec.name, key, out.kind, out.meta, record)
    shutil.rmtree(scratch, ignore_errors=True)  # committed: its checkpoints are done with
    return art

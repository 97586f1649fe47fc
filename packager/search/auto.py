"""`edgepack auto`, end to end: calibrate the latency model on this host (a cached step), build
the search space from the recipe, run the search (packager.search.halving) with trials through
the runner, then build the pick like any recipe into a package whose manifest records the search.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager import pipeline
from packager._version import __version__
from packager.config import LM_TASK
from packager.errors import RecipeError
from packager.plans import auto_plan, calibrate_step
from packager.progress import Reporter
from packager.recipe import load_recipe
from packager.search.constraints import Constraints
from packager.search.halving import Search, TrialLog
from packager.search.space import Space, build_space, digest
from packager.search.trials import TRIAL_OVERRIDES, PipelineEvaluator, Target

SCHEMA = "edgepack.search/1"
_TRIAL_KEYS = (
    "id", "phase", "describe", "mode", "fidelity", "threads", "latency_ms", "low_ms", "high_ms",
    "label", "size_mb", "memory_mb", "params", "metric", "drop", "seconds", "overrides",
)  # fmt: skip


@dataclass
class AutoResult:
    record: dict[str, Any]
    package_path: Path | None
    seconds: float
    run: Any


def resolve_target(name: str, targets_dir: str | None):
    """(profile or None for ssh, cores the threads may go up to)."""
    from packager.bench.errors import BenchError
    from packager.bench.machine import host_info
    from packager.bench.targets import SSH_PATTERN, is_ssh, load_targets

    if is_ssh(name):
        if not SSH_PATTERN.match(name):
            raise RecipeError(f"--target {name!r}: expected ssh://user@host or ssh://host:port")
        return None, 4
    try:
        profiles = load_targets(targets_dir)
    except BenchError as err:
        raise RecipeError(f"--target: {err}") from None
    if name not in profiles:
        raise RecipeError(
            f"--target {name!r}: unknown target; known: {', '.join(sorted(profiles))}, or "
            "ssh://user@host"
        )
    profile = profiles[name]
    if profile.host:
        return profile, host_info().get("usable_cores") or 1
    if not profile.can_estimate():
        raise RecipeError(
            f"--target {name}: the profile gives no peak_gflops/bandwidth_gbs, so the latency "
            "model cannot estimate for it; add them (edgepack targets shows the fields)"
        )
    return profile, profile.cores or 1


def _context(recipe, target: str, profile, calibration_id: str) -> str:
    """What every trial's result depends on besides its overrides: the recipe as resolved
    (its `auto:` section aside: widening the space reuses trials), the content of every file it
    names, the target, the host calibration and edgepack's version."""
    from packager.hashing import stamps
    from packager.plans import build_plan

    data = {k: v for k, v in recipe.to_json().items() if k != "auto"}
    files = {
        f"{s.name}.{k}": v for s in build_plan(recipe) for k, v in s.config.input_paths().items()
    }
    who = profile.model_dump(exclude={"file"}) if profile is not None else target
    return digest("context", data, stamps(files), who, calibration_id, __version__)


def auto(
    recipe_path: str | Path,
    target: str,
    constraints: Constraints,
    *,
    seed: int | None = None,
    overrides: tuple[str, ...] = (),
    cache_dir: str | Path | None = None,
    reporter: Reporter | None = None,
    quick_calibration: bool = False,
) -> AutoResult:
    """Search `recipe_path` (with `overrides`, as `edgepack build --set`) for `target` under
    `constraints`; build the pick and publish it to the recipe's package.out_dir."""
    from packager.recipe import resolve_recipe_path

    t0 = time.monotonic()
    reporter = reporter or Reporter()
    recipe_path = resolve_recipe_path(recipe_path)
    base = (*overrides, *((f"auto.seed={seed}",) if seed is not None else ()))
    recipe = load_recipe(recipe_path, (*TRIAL_OVERRIDES, *base))
    if recipe.task == LM_TASK:
        raise RecipeError(
            "edgepack auto: task text-generation (language models) is not searched yet"
        )
    profile, cores = resolve_target(target, recipe.bench.targets_dir)
    space = build_space(recipe, cores)  # a bad space is refused before the host is calibrated
    _check_threads(space.threads, cores, target, profile)
    cal_run = pipeline.run([calibrate_step(quick=quick_calibration)], cache_dir=cache_dir,
                           reporter=Reporter(verbose=False))  # fmt: skip
    cal_art = cal_run.artifact("calibrate")
    calibration = json.loads(cal_art.file().read_text())
    folder = _log_folder(cache_dir) / _context(recipe, target, profile, cal_art.id)
    evaluator = PipelineEvaluator(
        recipe_path, base, space, Target(target, profile, calibration), cache_dir=cache_dir
    )
    result = Search(space, evaluator, constraints, TrialLog(folder), progress=reporter.note).run()
    record = search_record(recipe_path, target, space, constraints, result, calibration, cal_art.id)
    run = _build_pick(recipe_path, base, record, target, cache_dir, reporter)
    return AutoResult(record, run.package_path if run else None, time.monotonic() - t0, run)


def _check_threads(threads: tuple[int, ...], cores: int, target: str, profile) -> None:
    """A thread count over the device's cores: measured here it is oversubscribed (a number that
    describes nothing), estimated it is the cores' figure under another name. Refused."""
    if profile is None or not threads or max(threads) <= cores:
        return
    where = "this host" if profile.host else target
    raise RecipeError(
        f"auto.threads: {max(threads)} is more than {where}'s {cores} cores"
        + (" (a measurement there would be oversubscribed)" if profile.host else "")
        + f"; choose from 1-{cores}"
    )


def _log_folder(cache_dir) -> Path:
    from packager.cache import cache_root

    return cache_root(cache_dir) / "auto"


def _build_pick(recipe_path, base, record, target, cache_dir, reporter):
    """The pick, built like any recipe (its trial's steps are cached) plus bench and package:
    measured here, and on the target as the search saw it."""
    pick = record["pick"]
    if pick is None:
        return None
    targets = ["host"] if target == "host" else ["host", target]
    bench = (f"bench.targets={json.dumps(targets)}", f"bench.threads=[{pick['threads']}]")
    recipe = load_recipe(recipe_path, (*TRIAL_OVERRIDES, *base, *pick["overrides"], *bench))
    return pipeline.run(
        auto_plan(recipe, record),
        cache_dir=cache_dir,
        reporter=reporter,
        publish=recipe.package.out_dir,
        name=recipe.name,
    )


def search_record(recipe_path, target, space: Space, c: Constraints, result, calibration,
                  calibration_id: str) -> dict[str, Any]:  # fmt: skip
    """The manifest's `search`: the space, every trial, the constraints, the front, the pick
    and why, and the latency model's host calibration."""
    trials = [{k: t.get(k) for k in _TRIAL_KEYS if k in t} for t in result["trials"]]
    pick = result["pick"]
    host = calibration["host"]
    return {
        "schema": SCHEMA,
        "recipe": Path(recipe_path).name,
        "target": target,
        "constraints": c.to_json(),
        "space": space.to_json(),
        "metric": pick["metric_name"] if pick else None,
        "teacher_metric": pick["teacher_metric"] if pick else None,
        "trials": trials,
        "front": result["front"],
        "pick": None if pick is None else {k: pick.get(k) for k in _TRIAL_KEYS if k in pick},
        "why": result["why"],
        "misses": result["misses"],
        "stopped": result["stopped"],
        "calibration": {
            "id": calibration_id,
            "cpu": host.get("cpu"),
            "onnxruntime": host.get("onnxruntime"),
            "clock_ghz": calibration["peaks"]["clock_ghz"],
            "rule": calibration["peaks"]["rule"],
            "noise": calibration["noise"],
        },
    }

"""The trials of `edgepack auto`, run for real: each is the recipe plus `--set`-style overrides,
compiled to a plan (packager.plans) and run by the one runner, so every step of every trial is
cached like any build and a rerun or a wider search reuses it.

- cost: the untrained student's graph (plans.sketch_plan), quantized as the candidate says, then
  its latency on the target: the latency model's estimate for a profile (`estimated`), or
  measured here (`--target host`) or on the device (`ssh://`): `measured`.
- train: the build up to evaluate (plans.trial_plan) at a fraction of the training, for each
  quantization mode of one student (the distill step is shared), then the same latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager import pipeline
from packager.plans import sketch_plan, trial_plan
from packager.progress import Reporter
from packager.quantize.registry import op_classes
from packager.recipe import load_recipe
from packager.search.space import Candidate, Group, Space

# What a trial changes in every recipe: no build gate stops a trial (the search judges the
# constraints itself), and no quantize speed check runs (the latency comes from the target).
TRIAL_OVERRIDES = (
    "evaluate.max_drop=1",
    "evaluate.min_accuracy=null",
    "evaluate.min_cosine=null",
    "quantize.speed_check=false",
    "quantize.max_drop=null",
)


class Target:
    """Where latency comes from: a profile (estimated by the latency model), this host or an
    ssh device (measured)."""

    def __init__(self, name: str, profile, calibration: dict[str, Any]):
        self.name, self.profile, self.calibration = name, profile, calibration

    @property
    def label(self) -> str:
        return "estimated" if self.profile is not None and not self.profile.host else "measured"

    def latency(self, model: Path, threads: tuple[int, ...], dims: dict[str, int]) -> dict:
        from packager.bench.latency import predict

        out, model_cost = {}, None
        for t in threads:
            est = predict(
                model, self.calibration, self.profile, threads=t, dims=dims, quantized=op_classes()
            )
            model_cost = est
            if self.label == "estimated":
                out[str(t)] = {"ms": est["latency_ms"], "low_ms": est["low_ms"],
                               "high_ms": est["high_ms"]}  # fmt: skip
            else:
                out[str(t)] = {
                    "ms": self._measure(model, t, dims),
                    "estimate_ms": est["latency_ms"],
                }
        memory = (model_cost["param_bytes"] + model_cost["activation_peak_bytes"]) / 1e6
        return {"latency": out, "label": self.label, "memory_mb": memory}

    def _measure(self, model: Path, threads: int, dims: dict[str, int]) -> float:
        if self.name.startswith("ssh://"):
            from packager.bench.remote import run_remote

            rec = run_remote(self.name, model, threads=threads, dims=dims, runs=200, seconds=1.0)
        else:
            from packager.bench.runner import run_one

            rec = run_one(model, threads=threads, dims=dims, warmup=20, runs=300, seconds=1.0)
        return rec["latency_ms"]["p50"]


class PipelineEvaluator:
    def __init__(self, recipe_path: str | Path, base: tuple[str, ...], space: Space,
                 target: Target, *, cache_dir: str | Path | None = None,
                 reporter: Reporter | None = None):  # fmt: skip
        self.recipe_path, self.base, self.space, self.target = recipe_path, base, space, target
        self.cache_dir = cache_dir
        self.reporter = reporter or Reporter(verbose=False)

    def recipe(self, overrides: list[str]):
        return load_recipe(self.recipe_path, (*TRIAL_OVERRIDES, *self.base, *overrides))

    def _measured(self, recipe, model: Path) -> dict[str, Any]:
        out = self.target.latency(model, self.space.threads, dict(recipe.bench.dims))
        return out | {"size_mb": model.stat().st_size / 1e6}

    def cost(self, candidate: Candidate) -> dict[str, Any]:
        recipe = self.recipe(candidate.overrides())
        res = pipeline.run(sketch_plan(recipe), cache_dir=self.cache_dir, reporter=self.reporter)
        last = "quantize" if candidate.mode != "none" else "export"
        out = self._measured(recipe, res.artifact(last).file())
        return out | {"params": res.artifact("sketch").meta.get("params")}

    def train(self, group: Group, fidelity: float, modes: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for mode in modes:
            cand = self.space.candidate(group, mode)
            recipe = self.recipe(cand.overrides() + self.space.fidelity_overrides(fidelity))
            res = pipeline.run(trial_plan(recipe), cache_dir=self.cache_dir, reporter=self.reporter)
            ev = res.artifact("evaluate").meta
            key, shipped = ev["metric"], ev["shipped"]
            model = res.artifact("quantize" if mode != "none" else "export").file()
            out[mode] = self._measured(recipe, model) | {
                "metric": ev["metrics"][shipped][key],
                "metric_name": key,
                "teacher_metric": ev["metrics"]["teacher_fp32"][key],
                "student_fp32_metric": ev["metrics"]["student_fp32"][key],
                "params": res.artifact("distill").meta.get("params"),
                "epochs_run": res.artifact("distill").meta.get("epochs_run"),
            }
        return out

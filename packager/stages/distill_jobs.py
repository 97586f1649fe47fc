"""What the distill stage's handlers (packager.stages.distill, and distill_api's for a teacher
only called) hand a modality's run: one job of plain values, started by
packager.distill.ddp.run_job in the step's process or on distill.nproc torchrun processes, on
the resolved compute, with checkpoints in the step's work folder."""

from __future__ import annotations

from packager.config import DistillStepConfig
from packager.stage import StageContext


def train_settings(cfg: DistillStepConfig) -> dict:
    """The training settings every modality's trainer reads (plain values)."""
    keys = "epochs batch_size lr weight_decay temperature alpha patience seed allow_larger warmup"
    return {k: getattr(cfg, k) for k in keys.split()}


def job_for(cfg: DistillStepConfig, ctx: StageContext, **fields) -> dict:
    """What every modality's run reads: plain values (packager.distill.ddp runs it here or on
    cfg.nproc torchrun processes), checkpoints in the step's work folder."""
    job = {"stage": ctx.step, **cfg.compute.launch(), "out": str(ctx.workdir)}
    job |= {"settings": train_settings(cfg), "work": str(ctx.scratch) if ctx.scratch else None}
    job["settings"] |= fields.pop("settings", {})
    return job | fields


def run_entry(entry: str, job: dict, cfg: DistillStepConfig, ctx: StageContext) -> dict:
    from packager.distill.ddp import run_job

    return run_job(entry, job, cfg.nproc, ctx.workdir, ctx.reporter)

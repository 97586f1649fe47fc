"""The one training loop: every student (array, image, text, language model) and the builtin
teachers train through it, on any device and precision, in one process or as one rank of a
torchrun job.

- Mixed precision: the loss is computed under `Compute.autocast()`, fp16 gradients are scaled.
- Many processes: the model and its helper modules (projections) are one `nn.Module` whose
  forward is the loss, wrapped in DistributedDataParallel, so DDP averages every gradient the
  loss touches. Every rank walks the same global batches and trains on its rows
  (rank, rank + world, ...); its mean loss is weighted by its share of the global batch, so
  the averaged gradient is the global batch's, as one process computes it (up to float
  summation order; dropout and batch-norm statistics are per rank).
- Checkpoints: every `checkpoint_steps` steps and at each epoch's end, the writer (local rank 0
  of each machine) saves model, optimizer, scheduler, scaler, RNG and loop state atomically in
  the run's work folder; a restarted run (torchrun --max-restarts, or the build run again)
  resumes there and ends where an uninterrupted run would.
- Throughput (items a second over the global batch) on the progress line and in the result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from packager.nets.device import CPU, Compute

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class Run:
    """How one training run executes (plain values): its compute, its place among the
    processes of a torchrun job, and where its checkpoints go (None: no checkpoints)."""

    compute: Compute = CPU
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    work: str | None = None
    checkpoint_steps: int = 500

    @property
    def writer(self) -> bool:
        """Writes checkpoints and outputs on its machine (each machine has its own cache)."""
        return self.local_rank == 0

    def mine(self, rows: list) -> list:
        return rows[self.rank :: self.world]


LOCAL = Run()  # one process on the CPU, no checkpoints


def this_run(compute: Compute, work: str | None = None, checkpoint_steps: int = 500) -> Run:
    """The Run of this process: rank and world from an initialised process group, else 0/1."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return Run(compute, work=work, checkpoint_steps=checkpoint_steps)
    world, local = dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    compute = compute.for_rank(local, world)
    return Run(compute, dist.get_rank(), world, local, work, checkpoint_steps)


def to_device(obj: Any, device: str, non_blocking: bool = False) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    return obj


def sharded_map(items: list, fn: Callable[[Any], Any], run: Run) -> Iterable[tuple[Any, Any]]:
    """`fn` over `items`, item i on rank i % world, every result gathered on every rank:
    yields (item, result) in item order. A teacher pass runs once across the ranks."""
    import torch.distributed as dist

    for first in range(0, len(items), run.world):
        i = first + run.rank
        mine = (i, fn(items[i]) if i < len(items) else None)
        got = [mine]
        if run.world > 1:
            got = [None] * run.world
            dist.all_gather_object(got, mine)
        for j, result in sorted(got, key=lambda g: g[0]):
            if j < len(items):
                yield items[j], result


def gathered(value: Any, run: Run) -> list[Any]:
    """Every rank's `value`, in rank order (one all-gather)."""
    if run.world == 1:
        return [value]
    import torch.distributed as dist

    got: list[Any] = [None] * run.world
    dist.all_gather_object(got, value)
    return got


def _sum(values: list[float], run: Run) -> list[float]:
    """Element-wise sum over the ranks (one all-reduce)."""
    if run.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=run.compute.device)
    dist.all_reduce(t)
    return t.tolist()


def _from_rank0(value: float, run: Run) -> float:
    if run.world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=run.compute.device)
    dist.broadcast(t, 0)
    return float(t.item())


class _LossModule(nn.Module):
    """What a step trains (the model and its helper modules); forward is the loss, so DDP sees
    every parameter the loss uses."""

    def __init__(self, modules: dict[str, nn.Module], loss_fn: Callable[..., torch.Tensor]):
        super().__init__()
        self.parts = nn.ModuleDict(modules)
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(batch)


@dataclass
class Progress:
    """The loop's state, saved in every checkpoint."""

    epoch: int = 1  # the epoch under way
    start: int = 0  # its batches already trained
    step: int = 0  # optimizer steps over the run
    total: float = 0.0  # this rank's loss x rows, this epoch
    seen: int = 0
    best: tuple[float, int, dict | None] = (float("-inf"), 0, None)
    curve: list[dict[str, float]] = field(default_factory=list)
    items: int = 0  # rows of the global batches trained
    seconds: float = 0.0  # time spent training (not validating)
    done: bool = False
    resumed_at: list[int] = field(default_factory=list)  # steps at which runs resumed
    rank_totals: list[tuple[float, int]] = field(default_factory=list)  # (total, seen) by rank
    extra: dict[str, Any] = field(default_factory=dict)  # a trainer's own counters


@dataclass
class LoopResult:
    best_val: float | None
    best_epoch: int
    epochs_run: int
    steps: int
    curve: list[dict[str, float]]
    seconds: float
    items: int
    extra: dict[str, Any]
    resumed_at: list[int]

    def throughput(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


Batches = Callable[[int, int], Iterable[Any]]  # (epoch, first batch) -> its batches from there


class Trainer:
    """One run's model, optimizer and schedule, stepped by `loop`. `loss_fn(batch)` returns
    (this rank's mean loss, its rows, the global batch's rows)."""

    def __init__(
        self,
        modules,
        loss_fn,
        opt,
        run: Run,
        *,
        sched=None,
        per_step=True,
        clip: float | None = None,
    ):
        from torch.nn.parallel import DistributedDataParallel

        self.run, self.opt, self.sched, self.per_step, self.clip = run, opt, sched, per_step, clip
        self.core = _LossModule(modules, loss_fn).to(run.compute.device)
        self.model = self.core
        if run.world > 1:
            ids = [run.compute.torch_device().index] if run.compute.kind == "cuda" else None
            self.model = DistributedDataParallel(
                self.core, device_ids=ids, find_unused_parameters=True
            )
        self.scaler = run.compute.scaler()
        self.extra: dict[str, Any] = {}  # a trainer's own counters, checkpointed with the loop

    def step(self, batch: Any) -> tuple[float, int, int]:
        with self.run.compute.autocast():
            loss, n, n_global = self.model(batch)
        share = n * self.run.world / max(1, n_global)  # the global mean, once DDP averages
        self.scaler.scale(loss.float() * share).backward()
        if self.clip is not None:
            self.scaler.unscale_(self.opt)
            params = [p for g in self.opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        if self.sched is not None and self.per_step:
            self.sched.step()
        return (float(loss.item()) if n else 0.0), n, n_global

    def state(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.core.state_dict().items()}

    def save(self, p: Progress) -> None:
        """Checkpoint (every rank calls it: each rank's running loss sums are gathered into
        it, so each resumes with its own)."""
        p.extra = dict(self.extra)
        if self.run.work is None:
            return
        p.rank_totals = gathered((p.total, p.seen), self.run)
        if not self.run.writer:
            return
        state = {
            "progress": p,
            "core": self.core.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict() if self.sched else None,
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": _cuda_rng(self.run),
        }
        from packager.files import atomic_path

        with atomic_path(Path(self.run.work) / CHECKPOINT) as tmp:
            torch.save(state, tmp)  # a kill leaves the previous checkpoint whole

    def resume(self) -> Progress | None:
        path = Path(self.run.work) / CHECKPOINT if self.run.work else None
        if path is None or not path.is_file():
            return None
        state = torch.load(path, map_location=self.run.compute.device, weights_only=False)
        self.core.load_state_dict(state["core"])
        self.opt.load_state_dict(state["opt"])
        if self.sched is not None and state["sched"] is not None:
            self.sched.load_state_dict(state["sched"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"].cpu())
        if state.get("cuda_rng") is not None and self.run.compute.kind == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.run.compute.device)
        p: Progress = state["progress"]
        p.total, p.seen = p.rank_totals[self.run.rank]
        p.resumed_at.append(p.step)
        self.extra.update(p.extra)
        return p


def _cuda_rng(run: Run):
    return torch.cuda.get_rng_state(run.compute.device) if run.compute.kind == "cuda" else None


def loop(
    trainer: Trainer,
    batches: Batches,
    *,
    epochs: int,
    steps_per_epoch: int,
    validate: Callable[[], float] | None = None,
    patience: int | None = None,
    max_steps: int | None = None,
    advance=lambda *a, **k: None,
    unit: str = "items/s",
    val_name: str = "val",
    validate_first: bool = True,
) -> LoopResult:
    """Train `epochs` epochs of `batches` (or `max_steps` steps); with `validate` (higher is
    better), keep the best weights (the untrained ones too, with `validate_first`) and stop
    after `patience` epochs without improvement. The curve's validation entries are named
    `val_name`."""
    run = trainer.run
    p = trainer.resume() or Progress()
    first = validate is not None and validate_first and p.epoch == 1 and p.start == 0
    if first and p.best[2] is None:
        v = _from_rank0(validate() if run.rank == 0 else 0.0, run)
        p.best, p.curve = (v, 0, trainer.state()), [{"epoch": 0, val_name: v}]
    if p.step:
        advance(p.step)
    while not p.done and p.epoch <= epochs:
        trainer.core.train()
        t0 = time.perf_counter()
        for batch in batches(p.epoch, p.start):
            loss, n, n_global = trainer.step(batch)
            p.total, p.seen, p.items = p.total + loss * n, p.seen + n, p.items + n_global
            p.start, p.step = p.start + 1, p.step + 1
            rate = p.items / max(1e-9, p.seconds + time.perf_counter() - t0)
            advance(1, loss=loss, **{unit: rate})
            if max_steps is not None and p.step >= max_steps:
                break
            if p.start % run.checkpoint_steps == 0 and p.start < steps_per_epoch:
                p.seconds, t0 = p.seconds + time.perf_counter() - t0, time.perf_counter()
                trainer.save(p)
        p.seconds += time.perf_counter() - t0
        p.extra = dict(trainer.extra)
        _end_epoch(trainer, p, validate, patience, max_steps, val_name)
        trainer.save(p)
    if p.best[2] is not None:
        trainer.core.load_state_dict(p.best[2])
    trainer.core.eval()
    best = p.best[0] if validate is not None else None
    return LoopResult(
        best,
        p.best[1] if validate else p.epoch - 1,
        p.epoch - 1,
        p.step,
        p.curve,
        p.seconds,
        p.items,
        p.extra,
        p.resumed_at,
    )


def _end_epoch(trainer: Trainer, p: Progress, validate, patience, max_steps, val_name) -> None:
    run = trainer.run
    if trainer.sched is not None and not trainer.per_step:
        trainer.sched.step()
    total, seen = _sum([p.total, float(p.seen)], run)
    entry: dict[str, float] = {"epoch": p.epoch, "train_loss": total / max(1.0, seen)}
    if validate is not None:
        trainer.core.eval()
        v = _from_rank0(validate() if run.rank == 0 else 0.0, run)
        trainer.core.train()
        entry[val_name] = v
        if v > p.best[0]:
            p.best = (v, p.epoch, trainer.state())
        elif patience is not None and p.epoch - p.best[1] >= patience:
            p.done = True
    p.curve.append(entry)
    p.done = p.done or (max_steps is not None and p.step >= max_steps)
    p.epoch, p.start, p.total, p.seen = p.epoch + 1, 0, 0.0, 0


def compute_record(run: Run, res: LoopResult, unit: str) -> dict[str, Any]:
    """What the manifest records of a training run: device, precision, processes, wall time
    spent training, items trained and their rate, and where a killed run resumed."""
    return {
        **run.compute.describe(),
        "processes": run.world,
        "seconds": round(res.seconds, 3),
        "items": res.items,
        "unit": unit,
        "throughput": round(res.throughput(), 3),
        "resumed_at_steps": res.resumed_at,
    }

"""Many processes, one or several machines, for every modality: a job (a dict of plain values)
runs in this process, or under torchrun as `python -m packager.distill.ddp ENTRY JOB.json` on
`nproc` processes (DDP: nccl on GPUs, gloo on CPUs). ENTRY (`module:function`) is called as
`function(job, run, reporter)` on every rank (`run`: packager.nets.loop.Run).

Several machines: every machine runs the same `edgepack build --nproc N` with torchrun's
rendezvous flags in EDGEPACK_TORCHRUN_ARGS (`--nnodes 2 --node-rank K --rdzv-backend c10d
--rdzv-endpoint HOST:PORT --rdzv-id JOB`); each builds its own cache, and the local rank 0 of
each machine writes the result there, so every machine goes on to the same package.

A failed run that is not an error of the recipe (a killed or lost process) is started again
`distill.restarts` times; the new processes resume from the checkpoint in the step's work
folder (so does the build when it is run again).

The writer prints its progress as lines `@@edgepack {json}` on stdout; this process forwards
them to its reporter, so a DDP run shows the same progress line as one process.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARK = "@@edgepack "
RESULT, ERROR, JOB = ".ddp-result.json", ".ddp-error.json", ".ddp-job.json"


class LineReporter:
    """A reporter for a rank: the writer's progress as marked lines, the others' silent."""

    def __init__(self, live: bool):
        self.live = live

    def _emit(self, **msg: Any) -> None:
        if self.live:
            print(MARK + json.dumps(msg, default=float), flush=True)

    def note(self, message: str) -> None:
        self._emit(note=message)

    @contextmanager
    def track(self, description: str, total: int):
        self._emit(track=description, total=total)
        yield lambda n=1, total=None, **fields: self._emit(advance=n, fields=fields)
        self._emit(end=description)


def entry_point(entry: str):
    import importlib

    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.distributed as dist

    from packager.errors import EdgepackError
    from packager.nets.device import Compute
    from packager.nets.loop import this_run

    entry, spec = argv or sys.argv[1:]
    job = json.loads(Path(spec).read_text())
    compute = Compute(**job["compute"])
    if compute.kind == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if compute.kind == "cuda" else "gloo")
    try:
        run = this_run(compute, job.get("work"), job.get("checkpoint_steps", 500))
        result = entry_point(entry)(job, run, LineReporter(run.writer))
        if run.writer:
            _write(Path(spec).with_name(RESULT), result)
        dist.barrier()
    except EdgepackError as err:  # one line for the build; the other ranks fail with it
        _write(Path(spec).with_name(ERROR), {"type": type(err).__name__, "message": str(err)})
        raise
    finally:
        dist.destroy_process_group()
    return 0


def _write(path: Path, value: dict[str, Any]) -> None:
    from packager.files import write_text

    write_text(path, json.dumps(value, default=float))


def run_job(entry: str, job: dict[str, Any], nproc: int, workdir: Path, reporter) -> dict:
    """`entry` on `job`: here when `nproc` is 1, else under torchrun with `nproc` processes on
    this machine (plus EDGEPACK_TORCHRUN_ARGS); returns the writer's result."""
    from packager.nets.device import Compute
    from packager.nets.loop import Run

    if nproc == 1:
        run = Run(
            Compute(**job["compute"]),
            work=job.get("work"),
            checkpoint_steps=job.get("checkpoint_steps", 500),
        )
        return entry_point(entry)(job, run, reporter)
    return _launch(entry, job, nproc, Path(workdir), reporter)


def _launch(entry: str, job: dict[str, Any], nproc: int, workdir: Path, reporter) -> dict:
    """torchrun, started again (up to job["restarts"] times) after a failure that was not an
    error of the recipe: a killed or lost process; the new processes resume from the last
    checkpoint. A fresh torchrun each time: its own elastic restarts of gloo groups can hang."""
    from packager.errors import StageError

    spec = workdir / JOB
    spec.write_text(json.dumps(job))
    log = workdir.parent / "last-torchrun.log"  # beside the step's cache entries
    try:
        for attempt in range(job.get("restarts", 0) + 1):
            code, text = _torchrun(entry, spec, nproc, job, reporter)
            if code == 0:
                return json.loads((workdir / RESULT).read_text())
            _raise_error(workdir / ERROR)  # a recipe's error: the same every time
            log.write_text(text)
            if attempt < job.get("restarts", 0):
                reporter.note(f"torchrun failed ({_cause(text)}): started again, from the last "
                              "checkpoint")  # fmt: skip
        raise StageError(
            job.get("stage", "distill"),
            f"torchrun ({nproc} processes) failed: {_cause(text)} (its log: {log}); run the "
            "build again to resume from the last checkpoint",
        )
    finally:
        for name in (JOB, RESULT, ERROR):
            (workdir / name).unlink(missing_ok=True)


def _torchrun(entry: str, spec: Path, nproc: int, job: dict[str, Any], reporter):
    """One torchrun of `entry` on this machine: (exit code, its stderr)."""
    import shlex
    import subprocess
    import tempfile

    extra = shlex.split(os.environ.get("EDGEPACK_TORCHRUN_ARGS", ""))
    argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    argv += [*(extra or ["--standalone"]), "-m", "packager.distill.ddp", entry, str(spec)]
    threads = job.get("threads") or max(1, (os.cpu_count() or 1) // nproc)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        _forward(proc.stdout, reporter)
        code = proc.wait()
        err.seek(0)
        return code, err.read()


def _cause(log: str) -> str:
    """The line of torchrun's log that says why: a rank's exception, or its exit signal."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("exitcode", "RuntimeError", "torch.distributed")) or "Error:" in line:
            return line
    return lines[-1] if lines else "no output"


def _raise_error(path: Path) -> None:
    """Re-raise the EdgepackError a rank raised (its class and line), when one did."""
    from packager import errors

    if path.is_file():
        found = json.loads(path.read_text())
        cls = getattr(errors, found["type"], errors.StageError)
        if issubclass(cls, errors.StageError):  # its message already names the stage
            err = cls.__new__(cls)
            Exception.__init__(err, found["message"])
            err.stage = found["message"].partition(":")[0]
            raise err
        raise cls(found["message"])


def _forward(lines, reporter) -> None:
    """The writer's marked progress lines into `reporter`'s bars and notes."""
    bars: list[Any] = []
    for line in lines:
        if not line.startswith(MARK):
            continue
        msg = json.loads(line[len(MARK) :])
        if "track" in msg:
            cm = reporter.track(msg["track"], msg["total"])
            bars.append((cm, cm.__enter__()))
        elif "advance" in msg and bars:
            bars[-1][1](msg["advance"], **msg["fields"])
        elif "end" in msg and bars:
            cm, _ = bars.pop()
            cm.__exit__(None, None, None)
        elif "note" in msg:
            reporter.note(msg["note"])
    for cm, _ in reversed(bars):
        cm.__exit__(None, None, None)


if __name__ == "__main__":
    sys.exit(main())

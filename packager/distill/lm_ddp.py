"""The torchrun entry of a DDP causal-LM distillation: `torchrun --nproc-per-node N -m
packager.distill.lm_ddp JOB.json` (the distill stage writes JOB.json and launches it; extra
torchrun flags such as --nnodes/--node-rank/--rdzv-endpoint for several machines come from
EDGEPACK_TORCHRUN_ARGS). gloo on CPU, nccl on GPU; rank 0 writes the student."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.distributed as dist

    from packager.distill.lm_distill import run

    job = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        run(job, dist.get_rank(), dist.get_world_size())
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())


def launch(job: dict, nproc: int, workdir: Path) -> dict:
    """Run `job` under torchrun with `nproc` processes on this machine (plus any rendezvous
    flags in EDGEPACK_TORCHRUN_ARGS); return rank 0's result. A failed rank is one line."""
    import os
    import shlex
    import subprocess

    from packager.distill.lm_distill import RESULT
    from packager.errors import StageError

    spec = workdir / "ddp-job.json"
    spec.write_text(json.dumps(job))
    extra = shlex.split(os.environ.get("EDGEPACK_TORCHRUN_ARGS", ""))
    argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if not extra:
        argv.append("--standalone")
    argv += [*extra, "-m", "packager.distill.lm_ddp", str(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(job.get("threads") or 1)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    spec.unlink()
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-3:]
        raise StageError("distill", f"torchrun ({nproc} processes) failed: {' | '.join(tail)}")
    return json.loads((Path(job["out"]) / RESULT).read_text())

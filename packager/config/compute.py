"""Where training and teacher passes run: distill.device and distill.precision, resolved at
plan time into the `compute` of every step they change (packager.nets.device)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from packager.config.base import Config

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"  # packager.nets.device resolves and checks it
Precision = Literal["fp32", "bf16", "fp16"]


class ComputeConfig(Config):
    """Where a step's training or teacher pass runs, resolved from distill.device at plan time
    (packager.nets.device.resolve: a device that is not here fails before any work). The
    device's kind and the precision change results and are keyed; which card of the kind, the
    loader workers, the checkpoint interval and a teacher pass's processes do not."""

    unkeyed: ClassVar[frozenset[str]] = frozenset(
        {"device", "workers", "checkpoint_steps", "nproc", "restarts"}
    )

    device: str = "cpu"
    kind: Literal["cpu", "cuda", "mps"] = "cpu"
    precision: Precision = "fp32"
    workers: int = Field(0, ge=0)
    checkpoint_steps: int = Field(500, ge=1)
    nproc: int = Field(1, ge=1)
    restarts: int = Field(1, ge=0)

    def job(self) -> dict[str, Any]:
        """What a mechanism's Compute takes (packager.nets.device.Compute)."""
        return {"device": self.device, "precision": self.precision, "workers": self.workers}

    def launch(self) -> dict[str, Any]:
        """What a job's launcher reads besides the compute (packager.distill.ddp)."""
        return {
            "compute": self.job(),
            "checkpoint_steps": self.checkpoint_steps,
            "restarts": self.restarts,
        }


class ComputeFields(Config):
    """The `distill:` section's fields that say where and how its passes run (the section
    extends this): resolved at plan time into each step's ComputeConfig."""

    nproc: int = Field(
        1,
        ge=1,
        le=64,
        description="processes distill (and the teacher's cached outputs) run in under "
        "torchrun, for every modality (DDP: gloo on CPU, nccl on GPU; one GPU a process); the "
        "global batch stays batch_size, each process trains its share (edgepack build --nproc "
        "N; several machines: EDGEPACK_TORCHRUN_ARGS, docs/distill-compute.md)",
    )
    device: str = Field(
        "auto",
        description="where every training and teacher pass of the build runs (the builtin "
        "teacher's training, teacher_outputs, teacher_logits, generate, distill): auto (CUDA "
        "when present, else mps, else cpu) | cpu | cuda | cuda:N | mps; a device that is not "
        "here is an error before any work",
    )
    precision: Precision = Field(
        "fp32",
        description="those passes' precision: fp32 | bf16 | fp16 (torch.autocast; fp16 with a "
        "gradient scaler). bf16 on a CPU needs bf16 instructions (avx512_bf16 / amx_bf16)",
    )
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="DataLoader worker processes preparing batches (images: decoding and "
        "augmentation; text: padding token ids); 0: in the training process. Results do not "
        "depend on it",
    )
    restarts: int = Field(
        1,
        ge=0,
        le=100,
        description="nproc > 1: times a failed torchrun (a killed or lost process, not an "
        "error of the recipe) is started again, resuming from the last checkpoint; 0: the "
        "build fails, and resumes there when it is run again",
    )
    checkpoint_steps: int = Field(
        500,
        ge=1,
        description="optimizer steps between checkpoints (and one at every epoch's end) in "
        "the step's work folder: a killed run resumes from the last one and ends where an "
        "uninterrupted run would",
    )

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(DEVICE_PATTERN, v):
            raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
        return v

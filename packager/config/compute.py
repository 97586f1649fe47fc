"""Where training and teacher passes run: distill.device and distill.precision, resolved at
plan time into the `compute` of every step they change (packager.nets.device)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

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

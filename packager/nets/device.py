"""Where a training or teacher pass runs, and in what precision: `distill.device` (auto | cpu |
cuda | cuda:N | mps) and `distill.precision` (fp32 | bf16 | fp16), resolved and checked once at
plan time (`resolve`), before any work, into a `Compute` that every trainer and teacher pass
takes as a plain argument.

bf16 and fp16 are torch.autocast: weights and optimizer state stay float32, matrix multiplies
and convolutions run in the low precision; fp16 adds a gradient scaler (its range is narrow),
bf16 needs none. On a CPU, bf16 is refused unless the CPU has bf16 instructions (AVX512-BF16 or
AMX on x86, BF16 on Arm): without them it is emulated and slower than fp32.
"""

from __future__ import annotations

import platform
import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packager.config.compute import DEVICE_PATTERN
from packager.errors import RecipeError

PRECISIONS = ("fp32", "bf16", "fp16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 (AVX512-BF16, AMX); Arm's BF16


@dataclass(frozen=True)
class Compute:
    """A resolved device (cpu, cuda:N, mps) and precision, plus the loader's worker count."""

    device: str = "cpu"
    precision: str = "fp32"
    workers: int = 0

    @property
    def kind(self) -> str:
        return self.device.split(":")[0]

    @property
    def pin_memory(self) -> bool:
        """Page-locked host batches: copies to a CUDA device overlap with compute."""
        return self.kind == "cuda"

    def torch_device(self):
        import torch

        return torch.device(self.device)

    def autocast(self) -> AbstractContextManager:
        """Mixed precision for a forward pass (and the loss); nothing in fp32."""
        if self.precision == "fp32":
            return nullcontext()
        import torch

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.kind, dtype=dtype)

    def scaler(self):
        """A gradient scaler, enabled for fp16 only (a no-op pass-through otherwise)."""
        import torch

        return torch.amp.GradScaler(self.kind, enabled=self.precision == "fp16")

    def for_rank(self, local_rank: int, world: int) -> Compute:
        """One process per GPU under torchrun: rank r of a node on cuda:r."""
        if self.kind != "cuda" or world == 1:
            return self
        return Compute(f"cuda:{local_rank}", self.precision, self.workers)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> dict[str, Any]:
        """What the manifest records: the device, its name, the precision."""
        return {
            "device": self.device,
            "device_name": device_name(self.device),
            "precision": self.precision,
        }


CPU = Compute()  # fp32 on the CPU, in the training process: every pass's default


def resolve(device: str = "auto", precision: str = "fp32", workers: int = 0) -> Compute:
    """`device` and `precision` checked against this machine: one RecipeError line when the
    device is not here, or the precision cannot run on it."""
    if not re.fullmatch(DEVICE_PATTERN, device):
        raise RecipeError(f"distill.device = {device!r}: expected auto, cpu, cuda, cuda:N or mps")
    if precision not in PRECISIONS:
        raise RecipeError(f"distill.precision = {precision!r}: expected fp32, bf16 or fp16")
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if _mps() else "cpu"
    if device.startswith("cuda"):
        device = _cuda(device)
    elif device == "mps" and not _mps():
        raise RecipeError("distill.device = mps: no Apple GPU (MPS) here; use auto or cpu")
    if device == "cpu" and precision == "bf16" and not cpu_has_bf16():
        raise RecipeError(
            f"distill.precision = bf16 on cpu: this CPU ({cpu_name()}) has no bf16 instructions "
            "(avx512_bf16, amx_bf16): emulated bf16 is slower than fp32; use fp32"
        )
    return Compute(device, precision, workers)


def _cuda(device: str) -> str:
    import torch

    if not torch.cuda.is_available():
        why = "a CPU-only build of torch" if torch.version.cuda is None else "no GPU visible"
        raise RecipeError(
            f"distill.device = {device}: no CUDA device here (torch {torch.__version__}, {why}); "
            "use distill.device=auto or cpu"
        )
    index = int(device.partition(":")[2] or torch.cuda.current_device())
    count = torch.cuda.device_count()
    if index >= count:
        raise RecipeError(
            f"distill.device = {device}: this machine has {count} CUDA device(s), cuda:0 to "
            f"cuda:{count - 1}"
        )
    return f"cuda:{index}"


def _mps() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux: /proc/cpuinfo's flags or Features); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic: from the CPU's flags on Linux; Apple Silicon from M2 has it and
    its flags cannot be read, so it is trusted."""
    flags = cpu_flags()
    if flags:
        return any(f in flags for f in BF16_CPU_FLAGS)
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str) -> str:
    """A human name for the device: the CPU's model, the GPU's product name."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return f"Apple GPU (mps, {platform.machine()})"
    return cpu_name()

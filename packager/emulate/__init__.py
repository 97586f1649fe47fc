"""Run a package's samples on another CPU architecture under qemu-user: a correctness check.

`check_arm64(package)` replays the samples on an aarch64 Python + onnxruntime (a Debian
sysroot plus PyPI's aarch64 wheels, built on demand by `ensure_sysroot` and cached) and
compares the outputs with this host's. Emulated timings say nothing about a real Arm core,
so nothing here reports a latency.
"""

from __future__ import annotations

from packager.emulate.arm64 import Arm64Check, check_arm64
from packager.emulate.errors import EmulationError
from packager.emulate.sysroot import default_sysroot, ensure_sysroot

__all__ = ["Arm64Check", "EmulationError", "check_arm64", "default_sysroot", "ensure_sysroot"]

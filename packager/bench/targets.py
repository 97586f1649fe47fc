"""Target profiles: YAML descriptions of device classes, validated by pydantic.

Built-in profiles live next to this file in targets/; users add their own with
`--targets-dir DIR` or the EDGEPACK_TARGETS environment variable (directories separated by
the OS path separator). A user file with the same `name` as a built-in one replaces it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from packager.bench.errors import BenchError

BUILTIN_DIR = Path(__file__).with_name("targets")
ENV_VAR = "EDGEPACK_TARGETS"
SSH_PATTERN = re.compile(r"^ssh://(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.:_\[\]-]+(?::\d+)?/?$")


class Figure(BaseModel):
    """A published (or derived) performance figure and where it comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float = Field(gt=0, description="the figure in the field's unit")
    source: str = Field(min_length=10, description="datasheet or vendor page, and any arithmetic")
    derived: bool = Field(
        description="true when computed (e.g. cores x clock x FLOP/cycle), not quoted"
    )


class TargetProfile(BaseModel):
    """One device class: what it has, what runs on it, and how fast it can be at best."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="what --target takes")
    description: str = Field(min_length=3)
    host: bool = Field(False, description="this machine: measured, cores read at run time")
    arch: Literal["x86_64", "aarch64", "armv7l"] | None = Field(
        None, description="CPU architecture (uname -m)"
    )
    cpu: str | None = Field(None, description="core or CPU model")
    cores: int | None = Field(None, ge=1, le=512, description="cores an app may use")
    clock_ghz: float | None = Field(None, gt=0, description="clock behind the peak figure")
    memory_mb: int | None = Field(None, ge=16, description="device RAM in MiB")
    app_memory_mb: int | None = Field(
        None, ge=16, description="what one app may use (host-emulated cap); default memory_mb"
    )
    app_memory_note: str | None = Field(None, description="why app_memory_mb is what it is")
    isa: tuple[str, ...] = Field((), description="ISA features, named as in /proc/cpuinfo")
    execution_provider: str = Field(
        "CPUExecutionProvider", description="the onnxruntime provider to prefer on the device"
    )
    peak_gflops: Figure | None = Field(None, description="peak FP32 GFLOP/s over all cores")
    peak_int8_gops: Figure | None = Field(
        None,
        description="peak int8 GOP/s over all cores (2 ops per multiply-accumulate) with the "
        "ISA's dot-product instructions; none: int8 is priced at the FP32 peak",
    )
    bandwidth_gbs: Figure | None = Field(None, description="peak DRAM bandwidth in GB/s")
    file: str | None = Field(None, description="the YAML it came from (filled in on load)")

    @model_validator(mode="after")
    def _complete(self) -> TargetProfile:
        if self.host:
            return self
        missing = [
            f for f in ("arch", "cpu", "cores", "memory_mb") if getattr(self, f, None) is None
        ]
        if missing:
            raise ValueError(f"a device profile needs {', '.join(missing)}")
        if self.app_memory_mb and self.memory_mb and self.app_memory_mb > self.memory_mb:
            raise ValueError("app_memory_mb cannot exceed memory_mb")
        return self

    @property
    def memory_cap_mb(self) -> int | None:
        """The memory cap a host-emulated run of this target gets."""
        return self.app_memory_mb or self.memory_mb

    @property
    def int8_dot_product(self) -> bool:
        """Whether the ISA has int8 dot-product instructions (Arm asimddp, x86 VNNI/AMX)."""
        return bool(set(self.isa) & {"asimddp", "avx_vnni", "avx512_vnni", "amx_int8"})

    @model_validator(mode="after")
    def _int8_peak_needs_dot_product(self) -> TargetProfile:
        if self.peak_int8_gops is not None and not self.int8_dot_product:
            raise ValueError(
                "peak_int8_gops needs int8 dot-product instructions in isa "
                "(asimddp, avx_vnni, avx512_vnni or amx_int8)"
            )
        return self

    def can_estimate(self) -> bool:
        return self.peak_gflops is not None and self.bandwidth_gbs is not None


def target_dirs(extra: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where profiles are read from, later entries overriding earlier ones by name."""
    dirs = [BUILTIN_DIR]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    if extra:
        dirs.append(Path(extra))
    return dirs


def load_profile(path: Path) -> TargetProfile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise BenchError(f"target profile {path}: cannot read ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise BenchError(f"target profile {path}: expected a mapping of fields")
    try:
        return TargetProfile.model_validate({**data, "file": str(path)})
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(x) for x in e["loc"]) or "(profile)"
        msg = e["msg"].removeprefix("Value error, ")
        raise BenchError(f"target profile {path}: {loc}: {msg}") from None


def load_targets(extra_dir: str | os.PathLike[str] | None = None) -> dict[str, TargetProfile]:
    """Every profile by name; a bad file is a one-line BenchError naming it."""
    out: dict[str, TargetProfile] = {}
    for folder in target_dirs(extra_dir):
        if not folder.is_dir():
            raise BenchError(f"targets directory {folder}: not a directory")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            profile = load_profile(path)
            out[profile.name] = profile
    return out


def is_ssh(target: str) -> bool:
    return target.startswith("ssh://")


def check_target_names(
    names: tuple[str, ...] | list[str], extra_dir: str | os.PathLike[str] | None = None
) -> None:
    """Raise BenchError naming the first target that is neither a profile nor ssh://user@host."""
    profiles: dict[str, TargetProfile] | None = None
    for name in names:
        if is_ssh(name):
            if not SSH_PATTERN.match(name):
                raise BenchError(f"target {name!r}: expected ssh://user@host or ssh://host:port")
            continue
        profiles = profiles if profiles is not None else load_targets(extra_dir)
        if name not in profiles:
            raise BenchError(
                f"unknown target {name!r}: known targets are {', '.join(sorted(profiles))} "
                "(see `edgepack targets`), or ssh://user@host"
            )

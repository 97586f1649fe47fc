"""Memory caps for host-emulated runs: a child cgroup v2 where the machine allows one.

A cgroup caps resident memory exactly and reports OOM kills in memory.events. Creating one
needs a cgroup v2 folder we may write whose cgroup.subtree_control enables `memory`: our own
cgroup (true at the root of a cgroup namespace or in a delegated systemd scope) or the folder
named by EDGEPACK_BENCH_CGROUP (e.g. from `systemd-run --user --scope -p Delegate=yes`).
Everywhere else the child applies RLIMIT_AS itself (see child._cap_memory).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "EDGEPACK_BENCH_CGROUP"


def _cgroup2_mount() -> Path | None:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return Path(left.split()[4])
    except OSError:
        pass
    return None


def _own_cgroup() -> Path | None:
    mount = _cgroup2_mount()
    if mount is None:
        return None
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            for line in f:
                if line.startswith("0::"):
                    return mount / line[3:].strip().lstrip("/")
    except OSError:
        pass
    return None


def cgroup_parent() -> Path | None:
    """A cgroup v2 folder under which a memory-capped child group can be made, or None."""
    env = os.environ.get(ENV_VAR)
    for folder in [Path(env)] if env else [_own_cgroup()]:
        if folder is None:
            continue
        try:
            controllers = (folder / "cgroup.subtree_control").read_text().split()
        except OSError:
            continue
        if "memory" in controllers and os.access(folder, os.W_OK):
            return folder
    return None


@dataclass
class CappedGroup:
    path: Path

    def oom_killed(self) -> bool:
        """True when the kernel OOM-killed a process of this group (memory.events)."""
        try:
            for line in (self.path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False


@contextlib.contextmanager
def capped_group(parent: Path, cap_mb: float) -> Iterator[CappedGroup]:
    """A fresh child group with memory.max = cap and no swap; removed on exit."""
    path = parent / f"edgepack-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        (path / "memory.max").write_text(str(int(cap_mb * 1024 * 1024)))
        swap = path / "memory.swap.max"
        if swap.exists():  # swapping would let a model "fit" by paging, hiding the cap
            swap.write_text("0")
        yield CappedGroup(path)
    finally:
        # The child has exited, but the kernel may take a moment to empty the group.
        for _ in range(50):
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)

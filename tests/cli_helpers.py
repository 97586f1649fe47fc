"""The real CLI in a child process (so exit codes, stderr and "no traceback" are what a user
sees), and tiny filesystems that are full or read-only: helpers of the fault suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def edgepack(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """`edgepack ARGS` as a user runs it; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "packager.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "CI": "true", **(env or {})},
        timeout=timeout,
    )


def one_error_line(proc) -> str:
    """The single `error:` line of a failed command (and no traceback anywhere)."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _can_mount() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


CAN_MOUNT = _can_mount()
needs_mount = pytest.mark.skipif(
    not CAN_MOUNT, reason="needs root and `unshare --mount` (a private tmpfs per test)"
)


def edgepack_on_tmpfs(
    mountpoint: Path, options: str, *args: str, env: dict | None = None, leftovers: bool = False
):
    """`edgepack ARGS` in a private mount namespace where `mountpoint` is a fresh tmpfs mounted
    with `options` (e.g. size=16k for a full disk, ro for a read-only one). The tmpfs goes when
    the command ends: with `leftovers`, the returned process's `.leftovers` lists what was left
    on it (`NAME SIZE MODE` a line, sorted), read inside the namespace."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o "$0" tmpfs "$1" && shift && exec "$@"'
    argv = ["unshare", "--mount", "sh", "-c", script, options, str(mountpoint)]
    listing = mountpoint.parent / f".{mountpoint.name}.leftovers"
    if leftovers:  # run the command, then list the tmpfs into a file outside it
        script = (
            'mount -t tmpfs -o "$0" tmpfs "$1" || exit 99; m="$1"; l="$2"; shift 2; "$@"; '
            'rc=$?; find "$m" -mindepth 1 -printf \'%P %s %m\\n\' | sort > "$l"; exit $rc'
        )
        argv = ["unshare", "--mount", "sh", "-c", script, options, str(mountpoint), str(listing)]
    argv += [sys.executable, "-m", "packager.cli", *map(str, args)]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true", **(env or {})},
        timeout=300,
        cwd=ROOT,
    )
    if leftovers:
        proc.leftovers = listing.read_text().splitlines()
        listing.unlink()
    return proc

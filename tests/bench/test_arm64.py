"""Spec for packager/emulate: `edgepack verify PKG --arch arm64`, samples replayed under qemu-user.

The emulated test needs qemu-aarch64-static and a sysroot: the one cached under
~/.cache/edgepack/arm64-sysroot (or $EDGEPACK_ARM64_SYSROOT), built on first use with
debootstrap as root (about 1-2 minutes; later runs reuse it).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from packager.cli import cli
from packager.emulate import Arm64Check, EmulationError, arm64, default_sysroot, ensure_sysroot
from packager.emulate.sysroot import SUITE, debian_mirror, read_stamp

# The child runs inside the emulated python: nothing but these may be imported.
CHILD_ALLOWED = set(sys.stdlib_module_names) | {"numpy", "onnxruntime", "edgepack_runtime"}


def _report(samples_ok: bool = True, diff: float = 0.0) -> dict:
    message = "4 samples reproduce" if samples_ok else "4 samples do not reproduce: logits"
    return {
        "samples_ok": samples_ok,
        "count": 4,
        "message": message,
        "max_abs_diff": {"logits": diff},
        "machine": "aarch64",
        "onnxruntime": "1.32.0",
    }


def test_compare_accepts_outputs_equal_to_the_host_within_tolerance() -> None:
    host = {"logits": np.array([[1.0, 2.0]], np.float32)}
    arm = {"logits": host["logits"] + 5e-5}
    r = arm64.compare(_report(), arm, host, atol=1e-4, rtol=0.0)
    assert r.ok and r.count == 4
    assert r.vs_host["logits"] == pytest.approx(5e-5, rel=1e-2)
    assert "not a latency" in r.message
    assert r.line().startswith("python/arm64 (qemu-user): ok: onnxruntime 1.32.0 on aarch64")


def test_compare_fails_when_arm64_differs_from_the_host() -> None:
    host = {"logits": np.zeros((2, 3), np.float32)}
    r = arm64.compare(_report(), {"logits": host["logits"] + 0.5}, host, atol=1e-4, rtol=1e-3)
    assert not r.ok
    assert "logits: max abs diff vs host 0.5" in r.message


def test_compare_fails_when_the_recorded_samples_do_not_reproduce() -> None:
    host = {"logits": np.zeros((2, 3), np.float32)}
    r = arm64.compare(_report(samples_ok=False, diff=0.7), dict(host), host, atol=1e-4, rtol=0)
    assert not r.ok and "(vs recorded)" in r.message
    assert r.vs_recorded == {"logits": 0.7}


def test_compare_fails_on_a_missing_or_misshaped_output() -> None:
    host = {"logits": np.zeros((2, 3), np.float32)}
    r = arm64.compare(_report(), {"logits": np.zeros((3, 2))}, host, atol=1, rtol=1)
    assert not r.ok and r.vs_host["logits"] == float("inf")


def test_the_emulated_child_imports_only_numpy_onnxruntime_and_the_runtime() -> None:
    tree = ast.parse(arm64.CHILD.read_text())
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert names <= CHILD_ALLOWED, names - CHILD_ALLOWED


def test_debian_mirror_comes_from_the_machines_apt_sources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("EDGEPACK_DEBIAN_MIRROR", raising=False)
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "other.sources").write_text(
        "Types: deb\nURIs: https://vendor.invalid/apt\nSuites: nodistro\nComponents: main\n"
    )
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: "
        f"{SUITE}-security\nComponents: main\n\n"
        f"Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\nSuites: {SUITE} "
        f"{SUITE}-updates\nComponents: main\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.invalid/debian"
    (d / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# deb http://old.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one-line.invalid/debian trixie main\n"
    )
    assert debian_mirror(tmp_path) == "http://one-line.invalid/debian"
    (tmp_path / "sources.list").unlink()
    with pytest.raises(EmulationError, match="EDGEPACK_DEBIAN_MIRROR"):
        debian_mirror(tmp_path)
    monkeypatch.setenv("EDGEPACK_DEBIAN_MIRROR", "http://env.invalid/debian")
    assert debian_mirror(tmp_path) == "http://env.invalid/debian"


def test_verify_arch_arm64_prints_the_arm64_verdict_and_fails_on_a_mismatch(
    tiny_build, monkeypatch
) -> None:
    verdict = Arm64Check(ok=False, message="logits: max abs diff vs host 0.77")
    monkeypatch.setattr("packager.emulate.check_arm64", lambda package, log=None: verdict)
    res = CliRunner().invoke(cli, ["verify", str(tiny_build.package_path), "--arch", "arm64"])
    assert "python/arm64 (qemu-user): error: logits: max abs diff vs host 0.77" in res.output
    assert res.exit_code == 5, res.output


@pytest.fixture(scope="session")
def arm64_sysroot() -> Path:
    """The cached sysroot, built here on first use; skips where it cannot exist."""
    if shutil.which(arm64.QEMU) is None:
        pytest.skip("needs qemu-aarch64-static (apt install qemu-user-static)")
    root = default_sysroot()
    if read_stamp(root) is None and (shutil.which("debootstrap") is None or os.geteuid() != 0):
        pytest.skip(f"no arm64 sysroot at {root}, and building one needs root and debootstrap")
    start = time.monotonic()
    ensure_sysroot(root)
    print(f"\narm64 sysroot ready in {time.monotonic() - start:.0f} s at {root}")
    return root


@pytest.mark.slow
def test_int8_package_samples_reproduce_under_arm64_emulation(
    arm64_sysroot: Path, cache_dir: Path, tmp_path: Path
) -> None:
    from tiny_models import tiny_recipe

    from packager.pipeline import build
    from packager.progress import SilentReporter

    # 7-bit weights: without VNNI, x86's u8s8 kernels saturate on full-range int8 weights, so
    # recorded outputs would be this host's arithmetic, not the model's (see README).
    recipe = tiny_recipe(quantize={"reduce_range": True}, package={"out_dir": str(tmp_path)})
    package = build(recipe, cache_dir=cache_dir, reporter=SilentReporter()).package_path
    res = CliRunner().invoke(cli, ["verify", str(package), "--arch", "arm64"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("python/arm64 (qemu-user): ok"))
    assert "on aarch64: 4 samples reproduce within atol=0.0001, rtol=0.001" in line
    assert float(re.search(r"max abs diff vs host (\S+)", line).group(1)) <= 1e-4
    assert " ms" not in line and "latency" in line  # only ever "not a latency"

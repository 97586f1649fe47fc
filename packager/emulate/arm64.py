"""`edgepack verify PKG --arch arm64`: the package's samples on aarch64, under qemu-user.

The sysroot's python3 runs under qemu-aarch64-static with QEMU_LD_PREFIX pointing at the
sysroot, so every library it loads is the aarch64 one: onnxruntime's aarch64 build with its
NEON kernels, which is what a Raspberry Pi or a phone would run. Its outputs on the samples
must match the recorded ones and this host's within the package's atol/rtol.

Known trap: onnxruntime's cpuinfo reads /proc/cpuinfo at import, and qemu-user (7.x) shows it
the host's x86 one, on which it crashes (SIGSEGV). The run therefore happens in a private
mount namespace (`unshare -m`) where an Arm cpuinfo is bind-mounted over /proc/cpuinfo; the
host's /proc is untouched.

Emulation is 10-100x slower than a real core and not in a consistent way, so no time is
reported: this is a correctness check only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from packager.emulate.errors import EmulationError
from packager.emulate.sysroot import ensure_sysroot, sysroot_python

CHILD = Path(__file__).with_name("_arm64_child.py")
QEMU = "qemu-aarch64-static"
QEMU_CPU = "cortex-a76"  # Raspberry Pi 5 class, as the /proc/cpuinfo below describes
_TIMEOUT_S = 600
# A Cortex-A76 (Raspberry Pi 5 class) as the kernel would describe it; QEMU_CPU emulates the same
# core, so the features onnxruntime reads here agree with the hardware caps it gets.
_CPUINFO_ENTRY = """processor\t: {n}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1

"""


@dataclass(frozen=True)
class Arm64Check:
    """The aarch64 verdict on a package's samples; `line()` is what the CLI prints."""

    ok: bool
    message: str
    count: int = 0
    # Largest |aarch64 - recorded| and |aarch64 - host| per output.
    vs_recorded: dict[str, float] = field(default_factory=dict)
    vs_host: dict[str, float] = field(default_factory=dict)
    onnxruntime: str | None = None
    runtime: str = "python/arm64 (qemu-user)"

    def line(self) -> str:
        return f"{self.runtime}: {'ok' if self.ok else 'error'}: {self.message}"


def check_arm64(
    package: str | os.PathLike[str],
    *,
    sysroot: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
    timeout: float = _TIMEOUT_S,
) -> Arm64Check:
    """Replay `package`'s samples on aarch64 and compare with the recorded and host outputs.

    A mismatch is a failed check (ok=False); a missing tool or a broken emulated run raises
    EmulationError. The sysroot (default: ensure_sysroot()'s) is built on first use.
    """
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise EmulationError(
            f"{QEMU} is not installed: apt-get install qemu-user-static "
            "(scripts/setup_system.sh installs it)"
        )
    path = Path(package).expanduser().resolve()
    if not path.exists():
        raise EmulationError(f"{package}: no such package")
    # Host side first: a package that does not load here is not worth emulating.
    host_rt = _host_runtime()
    child = _child_module()
    # The host's own verdict on the samples is verify's python check; here it is the reference.
    host_pkg, _, host_out = child.replay(host_rt, str(path))
    samples = host_pkg.manifest["samples"]
    atol, rtol = float(samples["atol"]), float(samples["rtol"])

    root = ensure_sysroot(sysroot, log=log)
    report, arm_out = _run_emulated(qemu, root, path, Path(host_rt.__file__).parent, timeout)
    return compare(report, arm_out, host_out, atol=atol, rtol=rtol)


def compare(
    report: dict[str, Any],
    arm_out: Mapping[str, np.ndarray],
    host_out: Mapping[str, np.ndarray],
    *,
    atol: float,
    rtol: float,
) -> Arm64Check:
    """The verdict: the emulated run's own sample check, and every output vs the host's."""
    vs_host: dict[str, float] = {}
    failures = [] if report["samples_ok"] else [f"{report['message']} (vs recorded)"]
    for name, host_value in host_out.items():
        arm = arm_out.get(name)
        if arm is None or arm.shape != host_value.shape:
            vs_host[name] = float("inf")
            failures.append(f"{name}: missing or shaped unlike the host's output")
            continue
        a, h = np.asarray(arm, np.float64), np.asarray(host_value, np.float64)
        vs_host[name] = float(np.max(np.abs(a - h), initial=0.0))
        if not np.allclose(a, h, atol=atol, rtol=rtol):
            failures.append(f"{name}: max abs diff vs host {vs_host[name]:.3g}")
    versions = f"onnxruntime {report['onnxruntime']} on {report['machine']}"
    if failures:
        message = f"{versions}: " + "; ".join(failures)
    else:
        worst = max(vs_host.values(), default=0.0)
        message = (
            f"{versions}: {report['count']} samples reproduce within atol={atol:g}, "
            f"rtol={rtol:g}; max abs diff vs host {worst:.2e} (correctness only, not a latency)"
        )
    return Arm64Check(
        ok=not failures,
        message=message,
        count=int(report["count"]),
        vs_recorded=dict(report["max_abs_diff"]),
        vs_host=vs_host,
        onnxruntime=report["onnxruntime"],
    )


def _run_emulated(
    qemu: str, root: Path, package: Path, runtime_src: Path, timeout: float
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Replay the samples with the sysroot's python under qemu: (child report, outputs)."""
    with tempfile.TemporaryDirectory(prefix="edgepack-arm64-") as tmp:
        # A copy, not the host's install dir: that may be a site-packages full of x86 wheels.
        runtime_dir = Path(tmp, "runtime")
        shutil.copytree(
            runtime_src,
            runtime_dir / "edgepack_runtime",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        out_npz, cpuinfo = Path(tmp, "outputs.npz"), Path(tmp, "cpuinfo")
        cpuinfo.write_text("".join(_CPUINFO_ENTRY.format(n=i) for i in range(os.cpu_count() or 1)))
        args = [str(runtime_dir), str(package), str(out_npz)]
        report = _emulate(qemu, root, cpuinfo, args, timeout)
        with np.load(out_npz, allow_pickle=False) as npz:
            return report, {name: npz[name] for name in npz.files}


def _emulate(qemu: str, root: Path, cpuinfo: Path, args: list[str], timeout: float) -> dict:
    """Run the child under qemu in a mount namespace with an Arm /proc/cpuinfo; its JSON."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EmulationError("unshare (util-linux) is needed for the arm64 check")
    # Root may make a mount namespace outright; others need a user namespace mapped to root.
    ns = [unshare, "--mount"] if os.geteuid() == 0 else [unshare, "--mount", "--map-root-user"]
    script = 'mount --bind "$0" /proc/cpuinfo && exec "$@"'
    argv = [*ns, "sh", "-c", script, str(cpuinfo), qemu, str(sysroot_python(root)), "-I"]
    argv += [str(CHILD), *args]
    # A clean environment: nothing of this host's python (PYTHONPATH, venv) may leak in.
    env = {
        "QEMU_LD_PREFIX": str(root),
        # The CPU the check claims: without it qemu emulates its `max` CPU (SVE, i8mm, ...),
        # whose int8 matrix-multiply path gave dynamic-INT8 models outputs that neither x86 nor
        # a Cortex-A76 gives (measured: 0.064 vs -0.036 on one logit).
        "QEMU_CPU": QEMU_CPU,
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C.UTF-8",
    }
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise EmulationError(f"the arm64 run took over {timeout:g} s under qemu") from None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    err = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    tail = err[-1][:300] if err else f"exit status {proc.returncode}"
    if not isinstance(report, dict):
        raise EmulationError(f"the arm64 run under qemu printed no report: {tail}")
    if not report.get("ok"):
        raise EmulationError(f"the arm64 run under qemu failed: {report.get('error')}")
    return report


def _host_runtime():
    from packager.edge_runtime import load_runtime

    return load_runtime(EmulationError)


def _child_module():
    # Loaded from its file so that host and device run the very same replay().
    spec = importlib.util.spec_from_file_location("_edgepack_arm64_child", CHILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

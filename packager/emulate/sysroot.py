"""An aarch64 Debian sysroot with python3, numpy and onnxruntime, built once and cached.

Built from Debian's own packages and PyPI's aarch64 wheels, with the machine's own apt and pip
configuration (so it works behind any mirror; no address is written into the repository):

1. `debootstrap --foreign --arch=arm64 --variant=minbase --include=python3`: the first stage
   only, which needs no arm64 execution. It unpacks the essential packages and downloads the
   rest, including python3, whose .debs we unpack ourselves (the second stage would run arm64
   maintainer scripts, which a sysroot for qemu-user never needs).
2. `pip install --target <site-packages> --platform manylinux_2_28_aarch64 --only-binary=:all:`
   of numpy and onnxruntime at this host's versions, so the check compares architectures and
   not library versions.

The tree is built beside its final place and renamed into it, under a lock: an interrupted
build never looks finished, and two concurrent first runs build it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import IO

from packager.emulate.errors import EmulationError

SYSROOT_ENV = "EDGEPACK_ARM64_SYSROOT"
MIRROR_ENV = "EDGEPACK_DEBIAN_MIRROR"
# bookworm's python3.11 matches PyPI's cp311 wheels; its glibc 2.36 runs manylinux_2_28 ones.
SUITE = "bookworm"
STAMP = "edgepack-sysroot.json"
# manylinux_2_28 first; older onnxruntime/numpy releases only ship manylinux2014 (2_17) wheels.
WHEEL_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64")
_DEBIAN_SUITES = {"bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing"}
_BUILD_TIMEOUT_S = 1800

Log = Callable[[str], None]


def default_sysroot() -> Path:
    """$EDGEPACK_ARM64_SYSROOT, else ~/.cache/edgepack/arm64-sysroot."""
    env = os.environ.get(SYSROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache, "edgepack", "arm64-sysroot").resolve()


def wanted_versions() -> dict[str, str]:
    """numpy and onnxruntime at this host's versions: the emulated side must match them."""
    out = {}
    for name in ("numpy", "onnxruntime"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise EmulationError(f"{name} is not installed on this host") from None
    return out


def sysroot_python(root: Path) -> Path:
    """The sysroot's python3.X binary (not the python3 symlink: qemu runs a real file)."""
    found = sorted(root.glob("usr/bin/python3.[0-9]*"))
    found = [p for p in found if re.fullmatch(r"python3\.\d+", p.name)]
    if not found:
        raise EmulationError(f"{root} has no usr/bin/python3.X: rebuild it (delete the folder)")
    return found[-1]


def read_stamp(root: Path) -> dict | None:
    try:
        return json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        return None


def ensure_sysroot(path: str | os.PathLike[str] | None = None, *, log: Log | None = None) -> Path:
    """Return a ready sysroot at `path` (default: default_sysroot()), building it if needed.

    A sysroot whose recorded numpy/onnxruntime differ from this host's is rebuilt. Building
    needs root (debootstrap), network access to a Debian mirror and to pip's index, and
    about 350 MB of disk.
    """
    root = Path(path).expanduser().resolve() if path else default_sysroot()
    versions = wanted_versions()
    stamp = read_stamp(root)
    if stamp is not None and all(stamp.get(k) == v for k, v in versions.items()):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f".{root.name}.lock"):
        stamp = read_stamp(root)  # another process may have built it while we waited
        if stamp is not None and all(stamp.get(k) == v for k, v in versions.items()):
            return root
        _build(root, versions, log or (lambda _msg: None))
    return root


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(root: Path, versions: dict[str, str], log: Log) -> None:
    for tool in ("debootstrap", "dpkg-deb", "tar"):
        if shutil.which(tool) is None:
            raise EmulationError(
                f"building the arm64 sysroot needs {tool}: apt-get install debootstrap "
                "(scripts/setup_system.sh installs it)"
            )
    if os.geteuid() != 0:
        raise EmulationError(
            f"building the arm64 sysroot needs root (debootstrap); build it once as root, or "
            f"point {SYSROOT_ENV} at one built elsewhere"
        )
    mirror = debian_mirror()
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.build-", dir=root.parent))
    try:
        log(f"arm64 sysroot: debootstrap --foreign {SUITE} into {work} ...")
        _run(
            [
                "debootstrap",
                "--foreign",
                "--arch=arm64",
                "--variant=minbase",
                "--include=python3",
                SUITE,
                str(work),
                mirror,
            ],
            "debootstrap",
            env=_apt_proxy_env(),
        )
        _unpack_remaining_debs(work)
        python = sysroot_python(work)
        py_version = python.name.removeprefix("python")
        site = work / "usr" / "local" / "lib" / python.name / "dist-packages"
        pins = [f"{name}=={version}" for name, version in versions.items()]
        log(f"arm64 sysroot: pip install {' '.join(pins)} (aarch64 wheels) ...")
        _run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
                "--target", str(site),
                *[arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)],
                "--implementation", "cp", "--python-version", py_version,
                "--only-binary=:all:",
                *pins,
            ],
            "pip install of the aarch64 wheels",
        )  # fmt: skip
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with this host's shebang
        seconds = time.monotonic() - start
        stamp = {"suite": SUITE, "python": py_version, **versions, "build_seconds": seconds}
        (work / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if root.exists():
            stale = root.with_name(f".{root.name}.stale-{os.getpid()}")
            root.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        work.rename(root)
        log(f"arm64 sysroot: ready in {seconds:.0f} s at {root}")
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _unpack_remaining_debs(work: Path) -> None:
    """Unpack the packages the first stage only downloaded (python3 and its libraries).

    `dpkg-deb -x` would replace the merged-/usr symlinks (/lib -> usr/lib) with real
    directories; piping `dpkg-deb --fsys-tarfile` into `tar --keep-directory-symlink` keeps
    them, which is what debootstrap does itself.
    """
    info = work / "debootstrap"
    debpaths = dict(
        line.split(maxsplit=1) for line in (info / "debpaths").read_text().splitlines() if line
    )
    for name in (info / "base").read_text().split():
        deb = work / debpaths[name].lstrip("/")
        with subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE
        ) as p:
            _run(
                ["tar", "-x", "--keep-directory-symlink", "-C", str(work)],
                f"unpacking {deb.name}",
                stdin=p.stdout,
            )
        if p.returncode != 0:
            raise EmulationError(f"dpkg-deb could not read {deb.name}")
    # The .debs are unpacked now: 40 MB the sysroot does not need.
    for deb in (work / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()


def _run(
    argv: list[str], what: str, env: dict[str, str] | None = None, stdin: IO[bytes] | None = None
) -> None:
    try:
        proc = subprocess.run(
            argv,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EmulationError(f"{what} took over {_BUILD_TIMEOUT_S} s; check the network") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise EmulationError(f"{what} failed: {lines[-1][:300] if lines else proc.returncode}")


def debian_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian archive URI from this machine's apt sources (or $EDGEPACK_DEBIAN_MIRROR)."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV]
    entries = _apt_sources(etc)
    # An entry for our suite first, then any Debian (not -security/-updates) suite: every
    # Debian mirror carries every suite.
    for wanted in ({SUITE}, _DEBIAN_SUITES):
        for uri, suites in entries:
            if wanted & set(suites):
                return uri
    raise EmulationError(
        "no Debian mirror found in /etc/apt/sources.list(.d): set "
        f"{MIRROR_ENV} to a Debian archive URL to build the arm64 sysroot"
    )


def _apt_sources(etc: Path) -> list[tuple[str, list[str]]]:
    """(uri, suites) of every enabled `deb` entry, in apt's order: sources.list, then .d/."""
    entries: list[tuple[str, list[str]]] = []
    lists = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in lists:
        for line in _read(path).splitlines():
            # deb [arch=amd64 signed-by=...] URI SUITE COMPONENT...
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", _read(path)):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split()))
    return entries


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _apt_proxy_env() -> dict[str, str]:
    """This environment plus apt's configured HTTP proxy, which debootstrap's wget ignores."""
    env = dict(os.environ)
    if env.get("http_proxy") or shutil.which("apt-config") is None:
        return env
    proc = subprocess.run(
        ["apt-config", "shell", "PROXY", "Acquire::http::Proxy"],
        capture_output=True,
        text=True,
        check=False,
    )
    words = shlex.split(proc.stdout.strip()) if proc.returncode == 0 else []
    if words and words[0].startswith("PROXY="):
        env["http_proxy"] = words[0].removeprefix("PROXY=")
    return env

"""`edgepack verify --runtime ...`: replay a package's samples through each device runtime.

Every runtime verifies the package itself (signature when given a key, every sha256, then the
recorded sample outputs within the manifest's atol/rtol) and answers with one line, `ok: ...`
or `error: ...`. Python runs in this process; C++ and Node run their check programs as child
processes, so what is tested is exactly what a device app would run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packager.errors import InputFileError

RUNTIMES_DIR = Path(__file__).resolve().parent.parent / "runtimes"
CPP_CHECK = RUNTIMES_DIR / "cpp" / "build" / "edgepack_check"
JS_CHECK = RUNTIMES_DIR / "js" / "bin" / "check.js"
# "js" is onnxruntime-node; "js-wasm" the same JS runtime on onnxruntime-web's wasm backend.
RUNTIMES = ("python", "cpp", "js", "js-wasm")
# `all` is the three; the wasm backend is opt-in (see expand()).
ALL = ("python", "cpp", "js")
CHOICES = (*RUNTIMES, "all")
_TIMEOUT_S = 300


@dataclass(frozen=True)
class RuntimeCheck:
    """One runtime's verdict on a package."""

    runtime: str
    ok: bool
    message: str  # the runtime's own line, without the ok:/error: prefix

    def line(self) -> str:
        return f"{self.runtime}: {'ok' if self.ok else 'error'}: {self.message}"


class RuntimeMissing(Exception):
    """The runtime is not built or installed here; the message says how to get it."""


def expand(runtimes: Iterable[str]) -> list[str]:
    """Selected names in a stable order; `all` means python, cpp and js (node)."""
    chosen = set(runtimes) or {"python"}
    if "all" in chosen:
        chosen |= set(ALL)
    return [r for r in RUNTIMES if r in chosen]


def verify_package(
    package: str | Path, runtimes: Iterable[str] = ("python",), pubkey: str | Path | None = None
) -> list[RuntimeCheck]:
    """Run every selected runtime on `package`; a missing runtime is a failed check."""
    path = Path(package)
    if not path.exists():
        raise InputFileError(f"{path}: no such package")
    if pubkey is not None:
        from packager.signing import read_public_key

        read_public_key(pubkey)  # a bad key file is the caller's error, not a runtime's verdict
    results = []
    for name in expand(runtimes):
        try:
            results.extend(_CHECKS[name](path, pubkey))
        except RuntimeMissing as missing:
            results.append(RuntimeCheck(name, False, str(missing)))
    return results


def _python(path: Path, pubkey: str | Path | None) -> list[RuntimeCheck]:
    """The package's model and, when it carries one, its ORT-format mobile model."""
    from packager.edge_runtime import load_runtime

    rt = load_runtime()
    results, model = [], None
    while True:
        name = "python" if model is None else f"python ({model})"
        try:
            pkg = rt.load(path, pubkey=pubkey, model=model)
            check = pkg.check_samples()
        except rt.EdgepackRuntimeError as err:
            return [*results, RuntimeCheck(name, False, " ".join(str(err).split()))]
        if not check.ok:
            return [*results, RuntimeCheck(name, False, check.message)]
        worst = max(check.max_abs_diff.values(), default=0.0)
        signed = f", signature {pkg.signature}" if pubkey is not None else ""
        message = (
            f"{len(pkg.manifest['files'])} files verified{signed}, {check.count} samples "
            f"reproduced (max abs diff {worst:.2e})"
        )
        replayed = check.message.partition("; generation: ")[2]
        if replayed:  # a language model's recorded greedy generation, token for token
            message += f", generation {replayed}"
        results.append(RuntimeCheck(name, True, message))
        mobile = pkg.manifest.get("mobile")
        if model is not None or not mobile:
            return results
        model = mobile["model"]


def _cpp(path: Path, pubkey: str | Path | None) -> list[RuntimeCheck]:
    binary = Path(os.environ.get("EDGEPACK_CPP_CHECK", CPP_CHECK))
    if not binary.is_file():
        raise RuntimeMissing(
            f"the C++ runtime is not built ({binary} missing): run `bash runtimes/cpp/setup.sh`"
        )
    from packager.edge_runtime import load_runtime, package_error

    rt = load_runtime()
    try:
        with _as_folder(path) as folder:
            return [_run_check("cpp", [str(binary), str(folder)], pubkey)]
    except rt.EdgepackRuntimeError as err:
        return [RuntimeCheck("cpp", False, package_error(path, err))]
    except OSError as err:  # a full or read-only TMPDIR: one line naming where
        return [RuntimeCheck("cpp", False, f"cannot unpack {path} for C++: {err}")]


def _js(path: Path, pubkey: str | Path | None, backend: str = "node") -> list[RuntimeCheck]:
    name = "js" if backend == "node" else f"js-{backend}"
    script = Path(os.environ.get("EDGEPACK_JS_CHECK", JS_CHECK))
    node = shutil.which("node")
    if node is None:
        raise RuntimeMissing("node is not installed: apt-get install nodejs npm")
    modules = script.parent.parent / "node_modules"
    if not script.is_file() or not modules.is_dir():
        raise RuntimeMissing(
            f"the JS runtime is not installed ({script.parent.parent}): run "
            f"`cd {script.parent.parent} && ONNXRUNTIME_NODE_INSTALL=skip npm ci`"
        )
    return [_run_check(name, [node, str(script), str(path), "--backend", backend], pubkey)]


def _js_wasm(path: Path, pubkey: str | Path | None) -> list[RuntimeCheck]:
    return _js(path, pubkey, backend="wasm")


_CHECKS = {"python": _python, "cpp": _cpp, "js": _js, "js-wasm": _js_wasm}


def _run_check(name: str, argv: list[str], pubkey: str | Path | None) -> RuntimeCheck:
    if pubkey is not None:
        argv = [*argv, "--pubkey", str(pubkey)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return RuntimeCheck(name, False, f"no answer within {_TIMEOUT_S} s")
    except OSError as err:
        raise RuntimeMissing(f"cannot start {argv[0]}: {err.strerror}") from None
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    verdicts = [ln for ln in lines if ln.startswith(("ok:", "error:"))]
    if proc.returncode == 0 and verdicts and verdicts[-1].startswith("ok:"):
        return RuntimeCheck(name, True, verdicts[-1].removeprefix("ok:").strip())
    errors = [ln for ln in verdicts if ln.startswith("error:")]
    if errors:
        return RuntimeCheck(name, False, errors[-1].removeprefix("error:").strip())
    tail = lines[-1] if lines else "no output"
    return RuntimeCheck(name, False, f"exit code {proc.returncode}: {tail}")


@contextmanager
def _as_folder(path: Path) -> Iterator[Path]:
    """The package as a folder: itself, or a zip unpacked by the runtime's checked reader (only
    listed regular files, each verified; duplicates, symlinks and bombs refused) into a
    temporary folder."""
    if path.is_dir():
        yield path
        return
    from packager.edge_runtime import load_runtime

    rt = load_runtime()
    with tempfile.TemporaryDirectory(prefix="edgepack-verify-") as tmp:
        with rt.open_package(path) as reader:
            reader.extract_to(Path(tmp) / "pkg")
        yield Path(tmp) / "pkg"

"""The three runtimes as an app or a user runs them, for tests/runtimes/: a hang fails the test
(a child process's timeout, or SIGALRM in this process) instead of stalling the suite.

  python  edgepack_runtime in this process, or `python -m edgepack_runtime` in a child
  js      node runtimes/js/bin/check.js PKG [--input RAW.npy | --image FILE | --pubkey KEY]
  cpp     runtimes/cpp/build/edgepack_check FOLDER [--image FILE | --pubkey KEY], predict FOLDER RAW
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECK_JS = REPO / "runtimes" / "js" / "bin" / "check.js"
NODE = shutil.which("node")
TIMEOUT_S = 60  # a hang fails the test instead of stalling the suite; no timing is asserted


def need_js() -> str:
    """The node binary, or skip the test when node or runtimes/js's modules are missing."""
    if NODE is None:
        pytest.skip("node is not installed")
    if not (CHECK_JS.parent.parent / "node_modules").is_dir():
        pytest.skip("runtimes/js is not installed: cd runtimes/js && npm ci")
    return NODE


@contextmanager
def no_hang(seconds: int = TIMEOUT_S) -> Iterator[None]:
    """In-process, a hang becomes a failure: SIGALRM interrupts a blocking open or read."""

    def alarm(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: the runtime hangs")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_error_line(argv: list[str], timeout: float = TIMEOUT_S) -> str:
    """Run a runtime's CLI that must refuse: exit code 1, nothing on stdout, one `error:` line
    on stderr; return the message after `error: `."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0].removeprefix("error: ")


def refusal(runtime: str, pkg: Path, request, tmp_path: Path) -> str:
    """The one message with which a runtime refuses a package, checking it as a device would:
    Python load() + check_samples() in this process (its error's text), JS `check.js PKG`,
    C++ `edgepack_check FOLDER` (a zip is unpacked first by the Python reader, the documented
    way: its refusal is then the C++ user's)."""
    import edgepack_runtime as ep

    if runtime == "python":
        with no_hang(), pytest.raises(ep.EdgepackRuntimeError) as refused:
            ep.load(pkg).check_samples()
        return " ".join(str(refused.value).split())
    if runtime == "js":
        return one_error_line([need_js(), str(CHECK_JS), str(pkg)])
    cpp_bin: Path = request.getfixturevalue("cpp_bin")
    folder = pkg
    if pkg.is_file():
        folder = tmp_path / "extracted"
        try:
            with no_hang(), ep.open_package(pkg) as reader:
                reader.extract_to(folder)
        except ep.EdgepackRuntimeError as err:
            return " ".join(str(err).split())
    return one_error_line([str(cpp_bin / "edgepack_check"), str(folder)])

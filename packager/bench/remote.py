"""`measured` on a real device: run the benchmark child over ssh with the device's own python.

run_remote sends the model (and its inputs), child.py and machine.py as one tar stream over
one ssh connection; on the device a small sh script unpacks them into a fresh temp dir, runs
machine.py's probe and then the child with the device's python3 + onnxruntime, prints their
JSON and removes the temp dir. The record is the same as run_one's, with `machine`
describing the device and `target` naming it.

Authentication is by key only (BatchMode=yes: ssh never prompts, so a missing key fails fast
instead of hanging). Extra ssh options, e.g. `-i ~/.ssh/pi_key -o UserKnownHostsFile=...`,
come from `ssh_options` or the EDGEPACK_SSH_OPTS environment variable; they go before ours,
and ssh keeps the first value it reads for each option, so they win. ~/.ssh/config applies
as usual. New host keys are accepted on first contact and checked ever after.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from packager.bench.errors import BenchError
from packager.bench.runner import CHILD, result_from_report
from packager.bench.schema import validate_result

MACHINE = Path(__file__).with_name("machine.py")
LM_CHILD = {"lm_child.py": Path(__file__).with_name("lm_child.py")}  # child.py imports it
SSH_OPTS_ENV = "EDGEPACK_SSH_OPTS"
REMOTE_PYTHON_ENV = "EDGEPACK_REMOTE_PYTHON"

# Ours come after the user's: the user's options take precedence (ssh keeps the first value).
_BASE_OPTS = (
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    "ConnectTimeout=15",
    "-o",
    "LogLevel=ERROR",
)
# Prints the machine record on the device with machine.py's own logic (stdlib; psutil if there).
_PROBE = "import json, machine; print(json.dumps(machine.host_info()))"


def run_remote(
    target: str,
    model_path: str | os.PathLike[str],
    *,
    threads: int = 1,
    batch: int = 1,
    warmup: int = 10,
    runs: int | None = 100,
    seconds: float | None = None,
    inputs: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
    timeout: float = 600,
    ssh_options: Sequence[str] | None = None,
    remote_python: str | None = None,
    lm: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Benchmark `model_path` on the device `ssh://[user@]host[:port]`; a `measured` record.
    Arguments mean what they mean for run_one (`lm`: tokens/s of a language model); `timeout` bounds the whole session (copy,
    probe and run). `remote_python` (default $EDGEPACK_REMOTE_PYTHON, else `python3`) is the
    device's interpreter, which needs numpy and onnxruntime. `ssh_options` (default
    $EDGEPACK_SSH_OPTS, shell-split) go to ssh before edgepack's own, so they win. Raises BenchError with one line when the device cannot be reached, lacks
    python3 or onnxruntime, or the child fails.
    """
    if runs is None and seconds is None:
        raise BenchError("run_remote needs runs or seconds (or both) to know when to stop")
    if threads < 1 or batch < 1 or warmup < 0 or (runs is not None and runs < 1):
        raise BenchError(
            f"threads and batch must be >= 1, warmup >= 0 and runs >= 1; got threads={threads} "
            f"batch={batch} warmup={warmup} runs={runs}"
        )
    dest, opts = _ssh_destination(target)
    if ssh_options is None:
        ssh_options = shlex.split(os.environ.get(SSH_OPTS_ENV, ""))
    ssh = ["ssh", *ssh_options, *_BASE_OPTS, *opts]
    python = remote_python or os.environ.get(REMOTE_PYTHON_ENV) or "python3"
    model = Path(model_path).expanduser().resolve()
    if not model.is_file():
        raise BenchError(f"model file not found: {model}")

    # The model and its external-data files keep their names, in their own folder.
    files: dict[str, Path | bytes] = {"child.py": CHILD, "machine.py": MACHINE, **LM_CHILD}
    files[f"model/{model.name}"] = model
    files.update({f"model/{location}": path for location, path in _external_data(model)})
    spec: dict[str, Any] = {
        "model": f"model/{model.name}",
        "threads": int(threads),
        "inter_op_threads": 1,
        "graph_optimization": "all",
        "batch": int(batch),
        "dims": {str(k): int(v) for k, v in (dims or {}).items()},
        "warmup": int(warmup),
        "runs": None if runs is None else int(runs),
        "seconds": None if seconds is None else float(seconds),
        "inputs": None,
    }
    spec["lm"] = dict(lm) if lm else None  # language models: tokens/s (lm_child.py)
    if isinstance(inputs, Mapping):
        import numpy as np

        buf = io.BytesIO()
        np.savez(buf, **{name: np.asarray(value) for name, value in inputs.items()})
        files["inputs.npz"], spec["inputs"] = buf.getvalue(), "inputs.npz"
    elif inputs is not None:
        files["inputs.npz"], spec["inputs"] = Path(inputs).expanduser().resolve(), "inputs.npz"
    files["spec.json"] = json.dumps(spec).encode()

    machine, report = _run(ssh, dest, target, files, python, model.name, timeout)
    try:
        # run_one's record, with the machine read on the device and the ssh URL as target.
        record = result_from_report(
            model,
            spec,
            report,
            target=target,
            machine=machine,
            input_source="generated" if inputs is None else "given",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchError(f"benchmark on {target} returned a malformed report: {exc!r}") from exc
    return validate_result(record)


def _external_data(model: Path) -> list[tuple[str, Path]]:
    """(location, path) of the files holding the model's external tensors (>2 GB models)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends share no useful base class
        raise BenchError(f"{model.name} is not a readable ONNX model: {exc}") from exc
    locations = sorted(
        {
            ExternalDataInfo(t).location
            for t in _tensors(proto.graph)
            if t.data_location == onnx.TensorProto.EXTERNAL
        }
    )
    found = [(loc, (model.parent / loc).resolve()) for loc in locations]
    missing = [loc for loc, p in found if not p.is_file() or model.parent not in p.parents]
    if missing:
        raise BenchError(f"{model.name}: external data {missing} not found beside the model")
    return found


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto in a graph: initializers, Constant values, and subgraphs' own."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _tensors(sub)


def _ssh_destination(target: str) -> tuple[str, list[str]]:
    """`ssh://user@host:port` -> ("user@host", ["-o", "Port=port"]), or BenchError."""
    try:
        url = urlsplit(target)
        port = url.port
    except ValueError as exc:
        raise BenchError(f"bad ssh target {target!r}: {exc}") from None
    if url.scheme != "ssh" or not url.hostname:
        raise BenchError(f"bad ssh target {target!r}: expected ssh://user@host[:port]")
    if url.password is not None:
        # Never carry a password around (it would end up in reports); keys only.
        raise BenchError(
            f"ssh targets take no password: use key auth (ssh-copy-id, or -i KEY in {SSH_OPTS_ENV})"
        )
    if url.path not in ("", "/") or url.query or url.fragment:
        raise BenchError(f"bad ssh target {target!r}: expected ssh://user@host[:port], no path")
    # urlsplit strips an IPv6 address's brackets, which is how ssh wants it.
    dest = f"{url.username}@{url.hostname}" if url.username else url.hostname
    return dest, ([] if port is None else ["-o", f"Port={port}"])


def _remote_script(python: str) -> str:
    """The POSIX sh program run on the device; the files arrive as a tar stream on stdin.

    One connection does it all (copy, probe, run, clean up): each ssh login costs a handshake
    and a login shell, which is seconds on a slow link or a busy board. Exit codes: 3 the
    copy failed, 127 no python, 4 the probe failed; otherwise the child's.
    """
    py = shlex.quote(python)
    missing = shlex.quote(f"no {python} on the device")
    return (
        'd=$(mktemp -d "${TMPDIR:-/tmp}/edgepack-remote.XXXXXX") || exit 3; '
        # The trap removes the dir however the script ends, even after the client went away.
        "trap 'cd /; rm -rf \"$d\"' EXIT; trap 'exit 1' HUP INT TERM PIPE; "
        'printf "%s\\n" "$d"; '
        'tar -xf - -C "$d" || exit 3; cd "$d" || exit 3; '
        f"command -v {py} >/dev/null 2>&1 || {{ echo {missing} >&2; exit 127; }}; "
        f"{py} -c {shlex.quote(_PROBE)} || exit 4; "
        f"{py} child.py spec.json"
    )


def _tar(files: dict[str, Path | bytes], archive: IO[bytes]) -> None:
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, content in files.items():
            if isinstance(content, Path):
                tar.add(content, arcname=name, recursive=False)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    archive.seek(0)


def _run(
    ssh: list[str],
    dest: str,
    target: str,
    files: dict[str, Path | bytes],
    python: str,
    label: str,
    timeout: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copy `files` to the device, run the probe and the child; return (machine, report)."""
    # `sh -c`: the login shell may not be POSIX (fish, csh); `--` ends ssh's options.
    argv = [*ssh, "--", dest, f"sh -c {shlex.quote(_remote_script(python))}"]
    # Spooled to disk, not memory: a model can be hundreds of MB.
    with tempfile.TemporaryFile() as archive:
        _tar(files, archive)
        try:
            proc = subprocess.run(
                argv, stdin=archive, capture_output=True, text=True, timeout=timeout, check=False
            )
        except FileNotFoundError:
            raise BenchError("ssh is not installed: install the OpenSSH client") from None
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"benchmark of {label} on {target} timed out after {timeout:g} s (copy + run); "
                "lower runs/seconds or raise timeout"
            ) from None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    code, err = proc.returncode, _last_line(proc.stderr)
    if code == 255 and not lines:
        raise BenchError(f"cannot reach {dest} over ssh: {err}")
    if code == 3 or not lines:
        raise BenchError(f"could not copy the model to a temp dir on {target}: {err}")
    if code == 127:
        raise BenchError(
            f"{target} has no {python}: install python3 with numpy and onnxruntime on the "
            f"device, or point {REMOTE_PYTHON_ENV} at one"
        )
    machine = _json(lines[1]) if len(lines) > 1 else None
    if code == 4 or machine is None:
        raise BenchError(f"the machine probe failed on {target}: {err}")
    report = _json(lines[-1]) if len(lines) > 2 else None
    if report is not None and not report.get("ok", False):
        error = report.get("error", "no reason")
        hint = ""
        if "No module named" in error:
            hint = f" (install numpy and onnxruntime for {python} on the device)"
        raise BenchError(f"benchmark of {label} on {target} failed: {error}{hint}")
    if report is None and code > 128:
        # sh reports a child killed by signal N as 128 + N; SIGKILL is the OOM killer's.
        hint = " (likely the out-of-memory killer)" if code == 137 else ""
        raise BenchError(
            f"benchmark of {label} on {target} was killed by signal {code - 128}{hint}: {err}"
        )
    if report is None or code != 0:
        raise BenchError(
            f"benchmark of {label} on {target} exited with status {code} without a report: {err}"
        )
    return machine, report


def _json(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _last_line(stderr: str | None) -> str:
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"

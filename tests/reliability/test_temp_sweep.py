"""Temp files are swept (docs/guarantees.md): every output is written under a temporary sibling
`.NAME.tmp-PID-XXXXXX` and renamed into place; a process killed meanwhile (kill -9) leaves it
behind, and the next run that writes NAME removes it, and every other such sibling whose
process is gone. A live process's temporary file is never touched, nor a file that only looks
like one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import edgepack
from tiny_models import outlier_mlp_onnx

from packager.files import sweep_stale

_WRITER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from packager.files import atomic_path, staging_folder
    out, how, ready = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    opener = staging_folder if how == "folder" else atomic_path
    with opener(out) as tmp:
        if how == "folder":
            (tmp / "part").write_bytes(b"x" * 4096)
        else:
            tmp.write_bytes(b"half a model")
        ready.write_text(tmp.name)
        if how == "live":
            time.sleep(120)
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of writing `out`
    """
)


def _writer(out: Path, how: str, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    """A process writing `out` that dies by SIGKILL mid-write ("file", "folder") or stays alive
    ("live"); returns it and the temporary name it left."""
    ready = tmp_path / f"ready-{how}"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out), how, str(ready)])
    for _ in range(600):
        if ready.exists() and ready.read_text():
            break
        time.sleep(0.05)
    if how != "live":
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    return proc, ready.read_text()


@pytest.fixture
def model(tmp_path) -> Path:
    return outlier_mlp_onnx(tmp_path / "m.onnx")


def test_quantize_sweeps_what_a_killed_quantize_left_and_keeps_a_live_one(model, tmp_path):
    out = tmp_path / "out" / "q.onnx"
    out.parent.mkdir()
    live, alive = _writer(out, "live", tmp_path)  # first: a writer sweeps as it starts
    _, dead = _writer(out, "file", tmp_path)  # kill -9 while writing q.onnx
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    dead_folder = f".q.onnx.tmp-{gone}-0a1b2c"  # a staging folder of a process now gone
    (out.parent / dead_folder / "sub").mkdir(parents=True)
    lookalike = out.parent / ".q.onnx.tmp-notapid-abcdef"
    lookalike.write_text("someone's file")
    try:
        assert {dead, dead_folder, alive} <= set(os.listdir(out.parent))
        proc = edgepack("quantize", model, "-o", out, "--mode", "dynamic", "--no-speed-check",
                        "--cache-dir", tmp_path / "c")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        left = set(os.listdir(out.parent))
        assert dead not in left and dead_folder not in left  # swept
        assert alive in left and lookalike.name in left  # a live writer's, and not ours
        assert "q.onnx" in left
    finally:
        live.kill()
        live.wait()
    assert sweep_stale(out) == [out.parent / alive]  # once its process is gone, it goes too


def test_keygen_sweeps_a_staging_folder_a_killed_keygen_left(tmp_path):
    key = tmp_path / "edgepack.key"
    _, dead = _writer(key, "folder", tmp_path)
    assert (tmp_path / dead).is_dir()
    proc = edgepack("keygen", key)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / dead).exists() and key.is_file()


def test_a_temporary_name_for_a_name_too_long_to_extend_is_swept_too(tmp_path):
    """A 240-byte output name cannot take `.tmp-PID-XXXXXX` and stay within 255 bytes: its
    temporary name is a hash of it, and the sweep finds that one as well."""
    out = tmp_path / ("m" * 235 + ".onnx")
    _, dead = _writer(out, "file", tmp_path)
    assert len(dead.encode()) <= 255 and not dead.startswith(f".{out.name}")
    assert sweep_stale(out) == [tmp_path / dead]

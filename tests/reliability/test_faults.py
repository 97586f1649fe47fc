"""The fault suite, as a user would meet the faults: kill -9 in the middle of a build, two
builds on one cache at once, a TMPDIR too small to unpack a package for the C++ runtime."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from cli_helpers import ROOT, edgepack, needs_mount
from tiny_models import tiny_recipe_dict

STEPS = 9  # data teacher export_teacher distill export quantize evaluate bench package


def _recipe(tmp_path: Path, out: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text("# tiny\n" + yaml.safe_dump(tiny_recipe_dict(package={"out_dir": str(out)})))
    return path


def _committed(cache: Path) -> int:
    return len(list(cache.glob("*/*/artifact.json")))


def _build_until(recipe: Path, cache: Path, commits: int) -> int:
    """Start a build and kill -9 it as soon as `commits` stage outputs are in the cache."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "packager.cli", "build", str(recipe), "--cache-dir", str(cache)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CI": "true"},
        cwd=ROOT,
    )
    deadline = time.monotonic() + 300
    while proc.poll() is None and _committed(cache) < commits and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.returncode


def _fingerprint(pkg: Path) -> dict[str, str]:
    """What must not depend on interruptions: the model, the samples, the metrics."""
    with zipfile.ZipFile(pkg) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        files = {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}
    kept = {n: h for n, h in files.items() if n == "model.onnx" or n.startswith("samples/")}
    return {**kept, "metrics": json.dumps(manifest["metrics"], sort_keys=True)}


@pytest.mark.slow
def test_kill_9_at_every_stage_boundary_resumes_to_the_same_package(tiny_build, tmp_path):
    out, cache = tmp_path / "dist", tmp_path / "cache"
    recipe = _recipe(tmp_path, out)
    killed = 0
    for commits in range(1, STEPS + 1):
        before = _committed(cache)
        code = _build_until(recipe, cache, commits)
        assert _committed(cache) >= before  # a kill never loses a finished stage
        killed += code == -signal.SIGKILL
    proc = edgepack("build", recipe, "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    assert killed >= STEPS - 2  # almost every build really died mid-way
    assert list(cache.glob("*/.tmp-*")) == []  # leftovers of the killed runs are swept
    assert list(out.glob(".*tmp*")) == []
    assert _fingerprint(out / "digits-tiny.edgepack") == _fingerprint(tiny_build.package_path)


@pytest.mark.slow
def test_two_builds_on_one_cache_at_once_both_succeed(tiny_build, tmp_path):
    cache = tmp_path / "cache"
    for i in (1, 2):
        (tmp_path / str(i)).mkdir()
    recipes = [_recipe(tmp_path / str(i), tmp_path / f"dist{i}") for i in (1, 2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "packager.cli", "build", str(r), "--cache-dir", str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CI": "true"},
            cwd=ROOT,
        )
        for r in recipes
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    fingerprints = [_fingerprint(tmp_path / f"dist{i}/digits-tiny.edgepack") for i in (1, 2)]
    assert fingerprints[0] == fingerprints[1] == _fingerprint(tiny_build.package_path)
    assert list(cache.glob("*/.tmp-*")) == []
    # and the cache they shared is whole: a third build reuses every step
    third = edgepack("build", recipes[0], "--cache-dir", cache)
    assert third.returncode == 0 and "nothing (all cached)" in third.stdout


@needs_mount
def test_a_tmpdir_too_small_to_unpack_for_cpp_is_one_line(tiny_build, tmp_path, cpp_bin):
    small = tmp_path / "tmp"
    small.mkdir()
    script = 'mount -t tmpfs -o size=8k tmpfs "$0" && exec "$@"'
    argv = ["unshare", "--mount", "sh", "-c", script, str(small), sys.executable, "-m"]
    argv += ["packager.cli", "verify", str(tiny_build.package_path), "--runtime", "cpp"]
    env = {
        **os.environ,
        "TMPDIR": str(small),
        "EDGEPACK_CPP_CHECK": str(cpp_bin / "edgepack_check"),
    }
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "cpp: error:" in proc.stdout and "No space left on device" in proc.stdout, proc.stdout
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert list(small.iterdir()) == []  # the tmpfs vanished with the namespace; nothing leaked

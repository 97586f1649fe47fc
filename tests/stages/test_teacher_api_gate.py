"""An API teacher's terms and its calls, as a user meets them: a strict build whose endpoint is
OpenAI's public API refused before any network access, naming the clause; --accept-terms
openai recorded in the manifest and the card; a build killed mid-run resumed without asking
again what was answered; the key in no file, line or record."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from api_server import Backend, serve
from click.testing import CliRunner

from packager.cli import cli
from packager.hashing import json_sha256

REPO = Path(__file__).resolve().parents[2]
RECIPE = str(REPO / "models" / "api-embed.yaml")


def _sets(data: Path, student: Path, out: Path, more: dict[str, str]) -> list[str]:
    sets = {
        "data.source": str(data),
        "data.limit": "null",
        "data.max_length": "32",
        "data.val_fraction": "0.15",
        "data.test_fraction": "0.2",
        "distill.student.source": f"hf:{student}",
        "distill.student.layers": "[0,2]",
        "distill.epochs": "1",
        "evaluate.max_drop": "0.5",
        "evaluate.probe": str(data),
        "teacher.api.eval_limit": "10",
        "bench.enabled": "false",
        "package.out_dir": str(out),
        **more,
    }
    return [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_texts_file):
    from tiny_models import tiny_bert_folder

    root = tmp_path_factory.mktemp("api-gate")
    student = tiny_bert_folder(root / "student", "feature-extraction", seed=2, hidden_size=16)
    return root, tiny_texts_file, student


def test_strict_build_to_openai_is_refused_before_any_network_access(world, monkeypatch):
    root, data, student = world
    touched = []

    def no_network(*args, **kwargs):
        touched.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-used-0123456789")
    more = {
        "teacher.source": "api:text-embedding-3-small",
        "teacher.api.base_url": "https://api.openai.com/v1",
        "teacher.api.api_key_env": "OPENAI_API_KEY",
        "teacher.api.retries": "0",
        "provenance.teacher.license": "null",
        "provenance.policy": "strict",
    }
    openai = _sets(data, student, root / "dist-openai", more)
    cache = ["--cache-dir", str(root / "cache-openai")]
    r = CliRunner().invoke(cli, ["build", RECIPE, *cache, *openai])
    line = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert "provenance.policy strict: teacher api:text-embedding-3-small" in line
    assert "develop models that compete with OpenAI" in line and "--accept-terms openai" in line
    assert touched == [] and not (root / "cache-openai" / "calls").exists()
    # Accepted: the gate lets it through; the endpoint is then really called (and, with no
    # network here, that is one error line naming the endpoint, never the key).
    r = CliRunner().invoke(cli, ["build", RECIPE, *cache, *openai, "--accept-terms", "openai"])
    line = " ".join(r.output.split())
    assert r.exit_code == 3, r.output
    assert "error: teacher api https://api.openai.com/v1 (embeddings): cannot connect" in line
    assert "Traceback" not in r.output and "sk-never-used" not in r.output
    assert touched  # it did try, after the gate


def test_accept_terms_openai_is_recorded_in_manifest_and_card(world, api_models):
    """A local server answering as gpt-4o-mini: OpenAI's model, found by its id."""
    root, data, student = world
    backend = Backend(embedder=api_models["embedder"], model_id="gpt-4o-mini")
    with serve(backend) as (url, _):
        more = {
            "teacher.source": "api:gpt-4o-mini",
            "teacher.api.base_url": url,
            "provenance.teacher.license": "null",
            "provenance.policy": "strict",
        }
        sets = _sets(data, student, root / "dist-accept", more)
        cache = ["--cache-dir", str(root / "cache-accept")]
        refused = CliRunner().invoke(cli, ["build", RECIPE, *cache, *sets])
        assert refused.exit_code == 2, refused.output
        assert "OpenAI Terms of Use" in " ".join(refused.output.split())
        r = CliRunner().invoke(cli, ["build", RECIPE, *cache, *sets, "--accept-terms", "openai"])
        assert r.exit_code == 0, r.output
    with zipfile.ZipFile(root / "dist-accept" / "api-embed.edgepack") as z:
        manifest = json.loads(z.read("manifest.json"))
        card = z.read("README.md").decode()
    prov = manifest["provenance"]
    assert prov["teacher"]["license"] == {
        "id": "openai",
        "from": "model id gpt-4o-mini",
        "link": "https://openai.com/policies/terms-of-use/",
    }
    assert [a["flag"] for a in prov["accepted"]] == ["--accept-terms openai"]
    assert "Terms accepted: `openai`" in card and "with `--accept-terms openai`" in card
    assert "Learned from another model's outputs" in card


def test_killed_mid_run_resumes_without_asking_again_and_never_writes_the_key(
    world, api_models, tmp_path
):
    _, data, student = world
    secret = "sk-resume-5ecret-0123456789abcdef"
    backend = Backend(embedder=api_models["embedder"], model_id="emb", key=secret, delay=0.4)
    env = {**os.environ, "TINY_KEY": secret, "CI": "true"}
    with serve(backend) as (url, b):
        more = {
            "teacher.source": "api:emb",
            "teacher.api.base_url": url,
            "teacher.api.api_key_env": "TINY_KEY",
            "teacher.api.batch": "8",
            "teacher.api.max_concurrency": "1",
        }
        sets = _sets(data, student, tmp_path / "dist", more)
        argv = [
            sys.executable,
            "-m",
            "packager.cli",
            "build",
            RECIPE,
            "--cache-dir",
            str(tmp_path / "cache"),
            *sets,
        ]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while b.counts["/v1/embeddings"] < 5 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert b.counts["/v1/embeddings"] >= 5
        calls = tmp_path / "cache" / "calls"
        entries = [json.loads(f.read_text()) for f in calls.rglob("*.json")]  # none half-written
        asked = {json_sha256(e["request"]) for e in entries}
        before_inputs = dict(b.inputs)
        b.delay = 0.0
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join((done.stdout + done.stderr).split())
    made, cached = map(
        int, re.search(r"teacher calls: (\d+) made this run, (\d+) answers", out).groups()
    )
    assert made > 0 and cached >= len(entries) > 0  # every answer the killed run got, reused
    # What the killed run had received is in the cache and never asked again: a text is
    # answered twice only if its batch (8 texts) was in flight when the run was killed.
    again = [t for t, n in b.inputs.items() if n > 1]
    assert len(again) <= 8 and all(before_inputs.get(t) == 1 for t in again)
    assert len(asked) == len(entries) and not list(calls.rglob(".*.tmp-*"))
    for f in [*tmp_path.rglob("*")]:
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
    assert secret not in done.stdout + done.stderr

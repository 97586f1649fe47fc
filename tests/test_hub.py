"""Spec for packager/hub.py: Hub ids resolve from the local Hugging Face cache (the layout `hf
download` writes, under HF_HUB_CACHE or HF_HOME), at the revision asked for; nothing is
downloaded unless asked. The cache is built on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager import hub
from packager.config.sources import hf_folder

MAIN, OLD = "a" * 40, "b" * 40


def _cache(root: Path) -> Path:
    repo = root / "models--acme--tiny"
    for commit in (MAIN, OLD):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    (repo / "refs" / "v1").write_text(OLD)
    return root


def test_split_id_reads_owner_name_and_revision():
    assert hub.split_id("acme/tiny") == ("acme/tiny", None)
    assert hub.split_id("acme/tiny@v1") == ("acme/tiny", "v1")
    assert hub.split_id("/abs/folder") is None and hub.split_id("just-a-name") is None


def test_the_cache_follows_hf_hub_cache_then_hf_home(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hub.cache_dir() == tmp_path / "c"


def test_a_cached_hub_id_resolves_to_its_snapshot_at_the_revision_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(tmp_path)))
    snaps = tmp_path / "models--acme--tiny" / "snapshots"
    assert hub.cached_snapshot("acme/tiny") == snaps / MAIN  # refs/main
    assert hub.cached_snapshot("acme/tiny@v1") == snaps / OLD  # a tag's ref
    assert hub.cached_snapshot(f"acme/tiny@{OLD}") == snaps / OLD  # a commit
    assert hub.cached_snapshot("acme/other") is None
    # wherever a recipe accepts hf:FOLDER (its cache key stamps the snapshot's files)
    monkeypatch.chdir(tmp_path)
    assert hf_folder("hf:acme/tiny") == snaps / MAIN


def test_the_revision_of_a_snapshot_is_recorded_by_provenance(tmp_path, monkeypatch):
    from packager.provenance.detect import revision_of

    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(tmp_path)))
    rev = revision_of(hub.cached_snapshot("acme/tiny"))
    assert rev == {"kind": "hub-cache", "commit": MAIN, "repo": "acme/tiny"}


def test_not_cached_says_the_exact_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    err = hub.not_cached("acme/tiny@v2", "teacher.source")
    assert f"`hf download acme/tiny --revision v2 --cache-dir {tmp_path}`" in str(err)
    assert "--allow-download" in str(err) and "\n" not in str(err)


def test_nothing_is_downloaded_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    called = []
    monkeypatch.setattr(hub, "download", lambda spec: called.append(spec) or tmp_path)
    assert hub.ensure("acme/absent", allow_download=False) is None and called == []
    assert hub.ensure("acme/absent", allow_download=True) == tmp_path
    assert called == ["acme/absent"]
    hub.ensure_source("builtin:digits-cnn")  # not a Hub id: left alone
    assert called == ["acme/absent"]


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9"])
def test_a_download_that_fails_is_one_line(tmp_path, monkeypatch, endpoint):
    from packager.errors import InputFileError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", endpoint)
    with pytest.raises(InputFileError, match="could not download acme/absent") as err:
        hub.download("acme/absent")
    assert "\n" not in str(err.value)

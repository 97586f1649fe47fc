"""probe stage: held-out text of another kind than the training data, built offline and
deterministically, keyed by the content of its source."""

from __future__ import annotations

import json

import pytest
from tiny_models import write_tiny_texts

from packager.config import ProbeConfig
from packager.config.sources import PROBE_FILES
from packager.errors import InputFileError
from packager.pipeline import run
from packager.progress import SilentReporter
from packager.stage import Step


def _probe(tmp_path, **cfg):
    steps = [Step("probe", ProbeConfig(**cfg))]
    res = run(steps, cache_dir=tmp_path / "c", reporter=SilentReporter())
    art = res.artifact("probe")
    texts = [json.loads(line)["text"] for line in art.file().read_text().splitlines()]
    return res.steps[0].status, art, texts


@pytest.mark.skipif(
    not PROBE_FILES["fortunes"].is_dir(), reason="needs the fortunes-min Debian package"
)
def test_the_builtin_probe_is_built_offline_and_deterministically(tmp_path):
    _, art, texts = _probe(tmp_path, limit=200)
    assert len(texts) == 200 == art.meta["texts"] and len(set(texts)) == 200
    assert all(4 <= len(t.split()) <= 80 and t.isprintable() for t in texts)
    _, _, again = _probe(tmp_path / "other", limit=200)
    assert again == texts  # another cache, the same probe
    _, _, reseeded = _probe(tmp_path, limit=200, seed=1)
    assert reseeded != texts and set(reseeded) <= set(_probe(tmp_path, limit=10**6)[2])


def test_a_users_file_is_a_probe_and_its_content_is_its_key(tmp_path):
    src = write_tiny_texts(tmp_path / "mine.jsonl", n=80, seed=3)
    status, art, texts = _probe(tmp_path, source=str(src), limit=50)
    assert status == "done" and len(texts) == 50 and art.meta["source"] == str(src)
    assert _probe(tmp_path, source=str(src), limit=50)[0] == "cached"
    write_tiny_texts(src, n=80, seed=4)  # same path, other text: a new probe
    status, _, changed = _probe(tmp_path, source=str(src), limit=50)
    assert status == "done" and changed != texts


def test_a_missing_builtin_source_says_which_package_ships_it(tmp_path, monkeypatch):
    monkeypatch.setitem(PROBE_FILES, "devil", tmp_path / "no-such.dict.dz")
    with pytest.raises(InputFileError, match=r"apt-get install dict-devil"):
        _probe(tmp_path, source="builtin:devil")
    with pytest.raises(InputFileError, match="unknown builtin probe"):
        _probe(tmp_path, source="builtin:nope")


def test_a_probe_too_small_to_measure_is_refused(tmp_path):
    src = tmp_path / "few.txt"
    src.write_text("just one line of text here\n" * 3)
    with pytest.raises(InputFileError, match="a probe needs at least 20"):
        _probe(tmp_path, source=str(src))

"""packager.sources.api_client and api: an OpenAI-compatible endpoint called through the
official client, against tests/api_server.py on 127.0.0.1 (tiny models, injected faults)."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from api_server import Backend, serve

from packager.config.api import ApiConfig
from packager.errors import EndpointError
from packager.sources import api
from packager.sources.api_client import Limiter, retry_after

MODEL = "tiny-teacher"


def _api(url: str, **kw) -> ApiConfig:
    return ApiConfig(base_url=url, **{"retries": 3, "timeout": 5.0, **kw})


def test_completions_with_logprobs_are_cached_call_by_call(api_models, tmp_path):
    backend = Backend(lm=api_models["lm"])
    prompts = ["the cat", "a dog ran", "the old map", "some bread"]
    with serve(backend) as (url, b):
        cfg = _api(url, max_tokens=6, top_logprobs=3, max_concurrency=3)
        caller = api.caller_for(cfg, tmp_path / "calls")
        got = api.complete(caller, cfg, MODEL, prompts)
        assert [len(g["tokens"]) for g in got] == [len(g["top_logprobs"]) for g in got]
        assert all(g["text"] and len(g["tokens"]) <= 6 for g in got)
        assert all(len(top) <= 3 for g in got for top in g["top_logprobs"])
        stats = caller.stats.to_json()
        assert (stats["calls"], stats["cached"], stats["requests"]) == (4, 0, 4)
        assert stats["models"] == [MODEL] and stats["tokens_out"] > 0
        assert b.counts["/v1/completions"] == 4
        # A rebuild: every answer from the cache, no request sent, the same answers.
        again = api.caller_for(cfg, tmp_path / "calls")
        assert api.complete(again, cfg, MODEL, prompts) == got
        assert (again.stats.calls, again.stats.cached, again.stats.attempts) == (0, 4, 0)
        assert b.counts["/v1/completions"] == 4
        # A change to what is asked is a new request; to how it is asked, not.
        faster = api.caller_for(cfg.model_copy(update={"max_concurrency": 1}), tmp_path / "calls")
        api.complete(faster, cfg, MODEL, prompts[:2])
        assert faster.stats.calls == 0
        longer = cfg.model_copy(update={"max_tokens": 7})
        api.complete(api.caller_for(longer, tmp_path / "calls"), longer, MODEL, prompts[:1])
        assert b.counts["/v1/completions"] == 5


def test_embeddings_batched_but_cached_per_text(api_models, tmp_path):
    backend = Backend(embedder=api_models["embedder"])
    texts = [f"the team won match {i}" for i in range(7)]
    with serve(backend) as (url, b):
        cfg = _api(url, batch=3)
        caller = api.caller_for(cfg, tmp_path, backoff=0.01)
        vectors = api.embed(caller, cfg, MODEL, texts)
        assert vectors.shape == (7, 32) and b.counts["/v1/embeddings"] == 3  # 3 + 3 + 1
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        more = [*texts[2:5], "cold rain and wind"]
        again = api.caller_for(cfg, tmp_path, backoff=0.01)
        got = api.embed(again, cfg, MODEL, more)
        np.testing.assert_allclose(got[:3], vectors[2:5], atol=1e-6)
        assert (again.stats.cached, again.stats.calls, again.stats.requests) == (3, 1, 4)
        assert b.counts["/v1/embeddings"] == 4


def test_chat_labels_parse_strictly(api_models, tmp_path):
    backend = Backend(labeler=api_models["labeler"])
    labels = ["sports", "tech", "weather"]
    with serve(backend) as (url, _):
        cfg = _api(url, prompt="Label the text as one of: {labels}.\nText: {text}")
        answers = api.chat(
            api.caller_for(cfg, tmp_path, backoff=0.01), cfg, MODEL, ["goal match team"], labels
        )
    assert api.parse_label(answers[0]["text"], labels) is not None
    assert api.parse_label(" **Sports.** ", labels) == 0
    assert api.parse_label('"weather"', labels) == 2
    for bad in ("sports or tech", "It is sports", "", "sport", "tech\nweather"):
        assert api.parse_label(bad, labels) is None


def test_faults_are_counted_and_retried_within_the_budget(api_models, tmp_path):
    faults = ["429", "500", "malformed", "cut", "drop", "empty", "503", "timeout"]
    backend = Backend(lm=api_models["lm"], faults=faults, retry_after=0.2, fault_sleep=1.5)
    prompts = ["the cat", "a dog", "the map"]
    with serve(backend) as (url, b):
        cfg = _api(url, max_tokens=4, retries=10, timeout=0.7, max_concurrency=1)
        caller = api.caller_for(cfg, tmp_path, backoff=0.01)
        got = api.complete(caller, cfg, MODEL, prompts)
    assert all(g["text"] for g in got)
    failures = caller.stats.to_json()["failures"]
    assert failures == {
        "connection": 2,  # the cut body and the dropped connection
        "empty": 1,
        "malformed": 1,
        "rate_limited": 1,
        "server_error": 2,  # 500 and 503
        "timeout": 1,
    }
    assert caller.stats.calls == 3 and caller.stats.attempts == 3 + 8
    assert max(b.bodies.values()) == 1  # no answer was paid for twice


def test_retry_after_is_honoured():
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({}) is None

    class Clock:
        t = 0.0

    slept = []

    def sleep(s):
        slept.append(round(s, 3))
        Clock.t += s

    lim = Limiter(120, clock=lambda: Clock.t, sleep=sleep)  # one request every 0.5 s
    for _ in range(3):
        lim.acquire()
    assert slept == [0.5, 0.5]
    lim.pause(4.0)  # a Retry-After: every thread waits it out
    lim.acquire()
    assert slept[-1] == 4.0


def test_a_429_storm_past_the_budget_is_one_error_line(api_models, tmp_path):
    backend = Backend(lm=api_models["lm"], faults=["429"] * 5, retry_after=0.05)
    with serve(backend) as (url, _):
        cfg = _api(url, retries=2)
        with pytest.raises(EndpointError) as err:
            api.complete(api.caller_for(cfg, tmp_path, backoff=0.01), cfg, MODEL, ["the cat"])
    msg = str(err.value)
    assert msg.startswith(f"teacher api {url} (completions): HTTP 429")
    assert "after 3 tries (teacher.api.retries = 2)" in msg and "\n" not in msg
    assert not list(tmp_path.rglob("*.json"))  # nothing cached for a failed request


def test_refused_key_names_the_variable_never_the_key(api_models, tmp_path, monkeypatch):
    secret = "sk-test-5ecret-value-0123456789"
    monkeypatch.setenv("TINY_API_KEY", secret + "x")  # the wrong key: the server echoes it
    backend = Backend(lm=api_models["lm"], key=secret)
    with serve(backend) as (url, _):
        cfg = _api(url, api_key_env="TINY_API_KEY")
        with pytest.raises(EndpointError) as err:
            api.complete(api.caller_for(cfg, tmp_path, backoff=0.01), cfg, MODEL, ["the cat"])
        assert "HTTP 401" in str(err.value) and "$TINY_API_KEY" in str(err.value)
        assert secret not in str(err.value) and "[key]" in str(err.value)
        monkeypatch.setenv("TINY_API_KEY", secret)
        caller = api.caller_for(cfg, tmp_path, backoff=0.01)
        api.complete(caller, cfg, MODEL, ["the cat"])
        assert caller.stats.calls == 1
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace")
    assert secret not in json.dumps(cfg.to_json()) and secret not in json.dumps(
        caller.stats.to_json()
    )
    monkeypatch.delenv("TINY_API_KEY")
    with pytest.raises(EndpointError, match="environment variable TINY_API_KEY is not set"):
        api.caller_for(cfg, tmp_path, backoff=0.01)


def test_unknown_model_unreachable_host_and_tls_are_one_line_each(api_models, tmp_path):
    with serve(Backend(lm=api_models["lm"])) as (url, _):
        cfg = _api(url)
        with pytest.raises(EndpointError, match=r"HTTP 404: no such model .*'gpt-nope' not found"):
            api.complete(api.caller_for(cfg, tmp_path, backoff=0.01), cfg, "gpt-nope", ["x"])
        tls = _api(url.replace("http://", "https://"), retries=5)
        with pytest.raises(EndpointError, match=r"\(completions\): TLS failure"):
            api.complete(api.caller_for(tls, tmp_path, backoff=0.01), tls, MODEL, ["x"])
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _api(f"http://127.0.0.1:{port}/v1", retries=1)
    with pytest.raises(EndpointError) as err:
        api.complete(api.caller_for(cfg, tmp_path, backoff=0.01), cfg, MODEL, ["x"])
    assert f"teacher api http://127.0.0.1:{port}/v1 (completions): cannot connect" in str(err.value)
    assert "after 2 tries" in str(err.value)


def test_progress_reports_rate_and_eta(api_models, tmp_path):
    seen = []
    with serve(Backend(lm=api_models["lm"])) as (url, _):
        cfg = _api(url, max_tokens=2, max_concurrency=1)
        caller = api.caller_for(cfg, tmp_path, progress=lambda *a: seen.append(a))
        api.complete(caller, cfg, MODEL, ["a", "b", "c"])
    assert [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(rate > 0 for _, _, rate, _ in seen) and seen[-1][3] == 0

"""`api:MODEL` teachers: a model behind an OpenAI-compatible endpoint, which the build can only
call. What it answers: completions (with their top-k log-probabilities), chat answers (a label,
parsed strictly), and embedding vectors, each request built from the recipe's teacher.api
section, sent through packager.sources.api_client and cached call by call.

Plain arguments in (the section, the model id, the texts), plain values out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from packager.config.api import ApiConfig
from packager.sources.api_cache import CallCache, request_key
from packager.sources.api_client import Caller, Endpoint
from packager.sources.teacher import (
    COMPLETIONS,
    LABELS,
    TOPK,
    VECTORS,
    Teacher,
    register_source,
)

PATHS = {"completions": "completions", "chat": "chat/completions", "embeddings": "embeddings"}


def caller_for(
    api: ApiConfig, calls_dir: Path, progress=None, backoff: float | None = None
) -> Caller:
    """The caller of `api`'s endpoint, its answers cached under `calls_dir` (the key is read
    from the environment here, and only here)."""
    endpoint = Endpoint(
        base_url=api.base_url,
        api_key_env=api.api_key_env,
        timeout=api.timeout,
        retries=api.retries,
        max_concurrency=api.max_concurrency,
        requests_per_minute=api.requests_per_minute,
        **({"backoff": backoff} if backoff is not None else {}),
    )
    return Caller(endpoint, CallCache(calls_dir), progress=progress)


def render(template: str, text: str, labels: list[str] | None = None) -> str:
    """The template with the example (and the label names) in place; nothing else in it is
    read as a placeholder, so braces in the text are just text."""
    out = template.replace("{labels}", ", ".join(labels or []))
    return out.replace("{text}", text)


def _generation(api: ApiConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"max_tokens": api.max_tokens, "temperature": api.temperature}
    if api.seed is not None:
        out["seed"] = api.seed
    return out


def completion_body(api: ApiConfig, model: str, text: str) -> dict[str, Any]:
    body = {"model": model, "prompt": render(api.prompt, text), **_generation(api)}
    if api.top_logprobs:
        body["logprobs"] = api.top_logprobs
    return body


def chat_body(api: ApiConfig, model: str, text: str, labels=None) -> dict[str, Any]:
    messages = [{"role": "system", "content": api.system}] if api.system else []
    messages.append({"role": "user", "content": render(api.prompt, text, labels)})
    body = {"model": model, "messages": messages, **_generation(api)}
    if api.top_logprobs:
        body |= {"logprobs": True, "top_logprobs": api.top_logprobs}
    return body


def _check_choice(answer: dict[str, Any]) -> str | None:
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "malformed"
    c = choices[0]
    text = c.get("text") if "text" in c else (c.get("message") or {}).get("content")
    if not isinstance(text, str):
        return "malformed"
    return "empty" if not text.strip() else None


def _answered(caller: Caller, path: str, body: dict, check) -> dict[str, Any]:
    """One request's answer: from the cache, or asked (and then cached)."""
    key = request_key(caller.endpoint.base_url, path, body)
    entry = caller.cached(key)
    if entry is None:
        entry = caller.store(key, body, caller.send(path, body, check))
    return entry["response"]


def _completion(answer: dict[str, Any]) -> dict[str, Any]:
    c = answer["choices"][0]
    lp = c.get("logprobs") or {}
    return {
        "text": c["text"],
        "finish_reason": c.get("finish_reason"),
        "tokens": lp.get("tokens"),
        "token_logprobs": lp.get("token_logprobs"),
        "top_logprobs": lp.get("top_logprobs"),
        "model": answer.get("model"),
    }


def _chat(answer: dict[str, Any]) -> dict[str, Any]:
    c = answer["choices"][0]
    content = (c.get("logprobs") or {}).get("content") or None
    tops = None
    if content:
        tops = [
            {t["token"]: t["logprob"] for t in step.get("top_logprobs") or []} for step in content
        ]
    return {
        "text": c["message"]["content"],
        "finish_reason": c.get("finish_reason"),
        "tokens": [step["token"] for step in content] if content else None,
        "token_logprobs": [step["logprob"] for step in content] if content else None,
        "top_logprobs": tops,
        "model": answer.get("model"),
    }


def complete(caller: Caller, api: ApiConfig, model: str, texts: list[str]) -> list[dict]:
    """Each text's completion: text, finish_reason, tokens, top_logprobs (or None), model."""

    def one(text: str) -> dict[str, Any]:
        return _completion(
            _answered(caller, "completions", completion_body(api, model, text), _check_choice)
        )

    return caller.map(texts, one)


def chat(caller: Caller, api: ApiConfig, model: str, texts: list[str], labels=None) -> list[dict]:
    """Each text's chat answer (the prompt template with {labels} filled in when given)."""

    def one(text: str) -> dict[str, Any]:
        body = chat_body(api, model, text, labels)
        return _chat(_answered(caller, "chat/completions", body, _check_choice))

    return caller.map(texts, one)


def _embedding_body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "input": text, "encoding_format": "float"}


def _check_vectors(n: int) -> Callable[[dict], str | None]:
    def check(answer: dict[str, Any]) -> str | None:
        data = answer.get("data")
        if not isinstance(data, list) or len(data) != n:
            return "malformed"
        widths = set()
        for d in data:
            v = d.get("embedding") if isinstance(d, dict) else None
            if not isinstance(v, list) or not v or not all(isinstance(x, int | float) for x in v):
                return "malformed"
            if not all(math.isfinite(x) for x in v):
                return "malformed"
            widths.add(len(v))
        return None if len(widths) == 1 else "malformed"

    return check


def embed(caller: Caller, api: ApiConfig, model: str, texts: list[str]) -> np.ndarray:
    """(len(texts), width) float32: the endpoint's vectors. Each text is cached on its own key
    (as if asked alone); the ones not cached go `api.batch` to a request."""
    path = "embeddings"
    keys = [request_key(caller.endpoint.base_url, path, _embedding_body(model, t)) for t in texts]
    vectors: dict[int, list[float]] = {}
    missing = []
    for i, key in enumerate(keys):
        entry = caller.cached(key)
        if entry is None:
            missing.append(i)
        else:
            vectors[i] = entry["response"]["embedding"]
    batches = [missing[j : j + api.batch] for j in range(0, len(missing), api.batch)]
    caller.stats.requests += len(texts) - len(missing)

    def one(batch: list[int]) -> None:
        body = {"model": model, "input": [texts[i] for i in batch], "encoding_format": "float"}
        answer = caller.send(path, body, _check_vectors(len(batch)))
        rows = sorted(answer["data"], key=lambda d: d.get("index", 0))
        for i, row in zip(batch, rows, strict=True):
            single = {"embedding": row["embedding"], "model": answer.get("model")}
            caller.store(keys[i], _embedding_body(model, texts[i]), single)
            vectors[i] = row["embedding"]

    caller.map(batches, one, weight=len)
    widths = {len(v) for v in vectors.values()}
    if len(widths) > 1:
        raise caller.fail(path, f"vectors of different widths {sorted(widths)} across requests")
    return np.asarray([vectors[i] for i in range(len(texts))], dtype=np.float32).reshape(
        len(texts), -1
    )


_EDGE = re.compile(r"^[\s\"'`*.:;,!()\[\]]+|[\s\"'`*.:;,!()\[\]]+$")


def parse_label(text: str, labels: list[str]) -> int | None:
    """The label an answer names, strictly: the whole answer is one label name (case and
    surrounding quotes, stars and punctuation aside); anything else is None."""
    said = _EDGE.sub("", text or "").strip().lower()
    matches = [i for i, name in enumerate(labels) if name.lower() == said]
    return matches[0] if len(matches) == 1 else None


@register_source
class ApiTeacher(Teacher):
    """Its answers are its outputs: completions (and their top-k log-probabilities), labels
    from a chat endpoint, vectors from an embeddings endpoint. No weights, no tokenizer: the
    student brings its own (distill.student.source)."""

    scheme = "api"
    local = False
    gives = frozenset({COMPLETIONS, LABELS, VECTORS, TOPK})

    @property
    def api(self) -> ApiConfig:
        assert self.cfg.api is not None  # TeacherConfig refuses an api: source without it
        return self.cfg.api

    @property
    def model(self) -> str:
        return self.spec

    def offers(self) -> frozenset[str]:
        topk = {TOPK} if self.api.top_logprobs else set()
        return {
            None: self.gives,
            "embeddings": frozenset({VECTORS}),
            "completions": frozenset({COMPLETIONS, *topk}),
            "chat": frozenset({COMPLETIONS, LABELS, *topk}),
        }[self.api.endpoint]

    def describe(self, declared=None, hub_id=None):
        from packager.provenance.detect import describe_endpoint

        return describe_endpoint(self.source, self.model, self.api.to_json(), declared, hub_id)

    def caller(self, calls_dir: Path, progress=None) -> Caller:
        return caller_for(self.api, calls_dir, progress)

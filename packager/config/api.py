"""A teacher you can only call: the `teacher.api:` section of an `api:MODEL` teacher (an
OpenAI-compatible endpoint: OpenAI, a vLLM or llama.cpp server, any provider speaking the API).

The key is never a value here: `api_key_env` names the environment variable that holds it, and
only the caller (packager.sources.api_client) reads it, when it sends a request. Nothing in this
section is secret, so the whole of it may be keyed, recorded and shown.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from packager.config.base import Config

Endpoint = Literal["chat", "completions", "embeddings"]
# What each task asks the endpoint for when `endpoint` is not given.
ENDPOINT_OF_TASK = {
    "text-generation": "completions",
    "feature-extraction": "embeddings",
    "text-classification": "chat",
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Prices(Config):
    """What the provider charges, for the teacher_calls record's cost (its price page's
    figures; edgepack never looks them up)."""

    input: float = Field(ge=0, description="USD per million prompt tokens")
    output: float = Field(0.0, ge=0, description="USD per million completion tokens")


class ApiConfig(Config):
    """How to call the endpoint. Fields that change what comes back (the URL, the endpoint, the
    prompt, the sampling settings) are keyed; how fast and how patiently it is called is not."""

    unkeyed: ClassVar[frozenset[str]] = frozenset(
        {"api_key_env", "max_concurrency", "requests_per_minute", "timeout", "retries", "prices"}
    )
    # Their values are never repeated in an error line: a key pasted there would be printed.
    unechoed: ClassVar[frozenset[str]] = frozenset({"api_key_env", "base_url"})

    base_url: str = Field(
        description="the API's base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1"
    )
    api_key_env: str | None = Field(
        None,
        description="the NAME of the environment variable holding the key (e.g. OPENAI_API_KEY); "
        "the key itself is never written to a recipe, cache key, manifest, card or log; none: "
        "no key (a local server)",
    )
    endpoint: Endpoint | None = Field(
        None,
        description="chat | completions | embeddings; none: the task's (text-generation: "
        "completions, feature-extraction: embeddings, text-classification: chat)",
    )
    prompt: str = Field(
        "{text}",
        description="the request's text: {text} is the example (the prompt, for text-generation); "
        "{labels} the label names, comma-separated (text-classification); the chat endpoint "
        "sends it as the user message",
    )
    system: str | None = Field(None, description="chat: a system message before the prompt")
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature (0: greedy)")
    max_tokens: int = Field(64, ge=1, le=32768, description="completion tokens per answer")
    top_logprobs: int = Field(
        0,
        ge=0,
        le=20,
        description="completions and chat: the top-k log-probabilities per generated token "
        "(token-level KD when the endpoint's tokens are the student's); 0: none",
    )
    seed: int | None = Field(0, description="sent with each request where the API takes one")
    batch: int = Field(
        32, ge=1, le=2048, description="embeddings: texts per request (each cached on its own)"
    )
    limit: int | None = Field(
        None,
        ge=1,
        description="cap on training texts (prompts) sent: what the calls cost; none: the whole "
        "train split",
    )
    eval_limit: int = Field(
        64,
        ge=1,
        description="held-out texts of each split (val, test, the probe) the teacher answers, "
        "for model selection and the agreement table",
    )
    prompt_words: int = Field(
        8,
        ge=1,
        description="text-generation on plain text (no prompt column): the first N words of "
        "each training text make its prompt",
    )
    max_concurrency: int = Field(4, ge=1, le=256, description="requests in flight at once")
    requests_per_minute: float | None = Field(
        None, gt=0, description="a ceiling on requests started per minute; none: no ceiling"
    )
    timeout: float = Field(60.0, gt=0, le=3600, description="seconds per request")
    retries: int = Field(
        5,
        ge=0,
        le=50,
        description="tries after the first for a request that failed in a way worth retrying "
        "(429, 5xx, timeouts, dropped connections, malformed or empty answers): exponential "
        "backoff with jitter, or the server's Retry-After on 429 and 503",
    )
    prices: Prices | None = Field(None, description="the provider's prices, for the cost")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL, e.g. https://api.openai.com/v1")
        if parts.query or parts.fragment:
            raise ValueError(
                "the URL takes no query string (a key in a URL would be recorded wherever the "
                "URL is): put the key in an environment variable named by teacher.api.api_key_env"
            )
        if parts.username or parts.password:
            # Never echo the URL: its credentials would land in the error line.
            raise ValueError(
                "the URL carries credentials: put the key in an environment variable and name "
                "it in teacher.api.api_key_env"
            )
        return v.strip().rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.fullmatch(v):
            # Never echo the value: it may be the key itself, pasted in the wrong field.
            raise ValueError(
                "expected the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key"
            )
        return v

    @field_validator("prompt")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{text}" not in v:
            raise ValueError("the prompt template needs {text} (where the example goes)")
        return v

    @model_validator(mode="after")
    def _fits_endpoint(self) -> ApiConfig:
        if self.endpoint == "embeddings" and self.top_logprobs:
            raise ValueError("top_logprobs: an embeddings endpoint returns vectors, not tokens")
        return self

    @property
    def host(self) -> str:
        """The endpoint's host (and port when given): what provenance records."""
        parts = urlsplit(self.base_url)
        return parts.netloc

    def endpoint_for(self, task: str) -> str:
        return self.endpoint or ENDPOINT_OF_TASK.get(task, "chat")


# What each task's student learns from an endpoint's answers.
_LOSSES = {
    "feature-extraction": {"embedding_cosine", "embedding_mse"},
    "text-classification": {"label_ce"},
    "text-generation": {"logits_kd", "label_ce"},
}


def api_rules(teacher: Any, task: str, distill: Any, generate: Any) -> None:
    """The recipe rules of an api: teacher (the teacher, distill and generate sections): a
    ValueError naming what to change."""
    if task not in _LOSSES:
        raise ValueError(
            f"an api: teacher answers text: task {task} needs a builtin: or python: teacher"
        )
    if not distill.enabled:
        raise ValueError("an api: teacher has no weights to ship: distill needs a student")
    if not getattr(distill.student, "source", None):
        raise ValueError(
            "distill.student.source: an api: teacher has no weights to derive a student from; "
            "give the folder the student starts from (hf:FOLDER; for text-generation a causal LM "
            "of the endpoint's family, so its top-k log-probabilities can teach it token by token)"
        )
    endpoint = teacher.api.endpoint_for(task)
    if endpoint != ENDPOINT_OF_TASK[task]:
        raise ValueError(
            f"teacher.api.endpoint {endpoint}: task {task} learns from the "
            f"{ENDPOINT_OF_TASK[task]} endpoint"
        )
    wrong = set(distill.loss_weights(task)) - _LOSSES[task]
    if distill.losses is not None and wrong:
        raise ValueError(
            f"distill.losses {sorted(wrong)}: an api: teacher's {endpoint} answers teach "
            f"{sorted(_LOSSES[task])} only"
        )
    if task == "text-generation" and (
        generate.enabled or distill.teacher_topk or distill.on_policy
    ):
        raise ValueError(
            "an api: teacher writes its completions (and their top-k log-probabilities) in the "
            "teacher step: drop generate.enabled, distill.teacher_topk and distill.on_policy"
        )

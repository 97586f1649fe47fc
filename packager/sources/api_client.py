"""Calling an OpenAI-compatible endpoint with the official `openai` client: a bounded number of
requests in flight, a ceiling on requests per minute, retries with exponential backoff and
jitter (the server's Retry-After on 429 and 503), every answer cached by its request
(packager.sources.api_cache), and a `teacher_calls` record of what it cost.

A failure retries cannot mend (a refused key, an unknown model, a TLS failure), or one that
outlasts the retry budget, is one EndpointError line naming the endpoint and the cause. The key
is read from the environment when the caller is made and never leaves it: it is scrubbed from
every message a server sends back.
"""

from __future__ import annotations

import os
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from packager.errors import EndpointError, one_line
from packager.sources.api_cache import CallCache

BACKOFF_BASE = 0.5  # seconds before the first retry (full jitter: uniform(0, base * 2**n))
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 300.0  # a server asking for longer than this is an error, not a wait


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CallStats:
    """The teacher_calls record: what this run asked, paid for and was refused."""

    requests: int = 0  # answers wanted
    cached: int = 0  # answered from the call cache: no request sent
    calls: int = 0  # requests answered by the endpoint (paid for)
    attempts: int = 0  # requests sent, failed ones included
    tokens_in: int = 0
    tokens_out: int = 0
    failures: Counter = field(default_factory=Counter)  # by kind, retried or not
    truncated: int = 0  # answers cut at max_tokens (finish_reason length), kept
    models: set[str] = field(default_factory=set)  # the model ids the server answered with
    first_call: str | None = None
    last_call: str | None = None
    seconds: float = 0.0

    def to_json(self, prices: dict[str, float] | None = None) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("requests", "cached", "calls", "attempts")}
        out |= {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out}
        out |= {"failures": dict(sorted(self.failures.items())), "truncated": self.truncated}
        out |= {"models": sorted(self.models), "first_call": self.first_call}
        out |= {"last_call": self.last_call, "wall_seconds": round(self.seconds, 3)}
        cost = None
        if prices:
            cost = self.tokens_in / 1e6 * prices["input"] + self.tokens_out / 1e6 * prices.get(
                "output", 0.0
            )
        return out | {"cost_usd": None if cost is None else round(cost, 6), "prices": prices}


class _Retry(Exception):
    """A failure worth another try: its kind (for the record), its cause, the wait it asks."""

    def __init__(self, kind: str, cause: str, wait: float | None = None):
        super().__init__(cause)
        self.kind, self.cause, self.wait = kind, cause, wait


class Limiter:
    """Requests start at most `per_minute` times a minute, and all wait while a server's
    Retry-After (or a 429 storm's backoff) pauses the endpoint."""

    def __init__(self, per_minute: float | None, clock=time.monotonic, sleep=time.sleep):
        self.gap = 60.0 / per_minute if per_minute else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)

    def acquire(self) -> None:
        with self.lock:
            now = self.clock()
            start = max(now, self.next_at, self.paused_until)
            self.next_at = start + self.gap
        if start > now:
            self.sleep(start - now)


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call (plain values from the recipe's teacher.api section)."""

    base_url: str
    api_key_env: str | None = None
    timeout: float = 60.0
    retries: int = 5
    max_concurrency: int = 4
    requests_per_minute: float | None = None
    backoff: float = BACKOFF_BASE  # seconds before the first retry; doubles each try


def retry_after(headers: Any) -> float | None:
    """The wait a response asks for: Retry-After in seconds or as an HTTP date, or
    retry-after-ms."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _tls(err: BaseException) -> bool:
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, ssl.SSLError) or "SSL" in type(err).__name__:
            return True
        text = str(err)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL:" in text or "WRONG_VERSION" in text:
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


class Caller:
    """One endpoint's requests: cached, rate-limited, retried, counted."""

    def __init__(
        self,
        endpoint: Endpoint,
        cache: CallCache,
        *,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[int, int, float, float | None], None] | None = None,
    ):
        self.endpoint, self.cache, self.sleep = endpoint, cache, sleep
        self.progress = progress
        self.stats = CallStats()
        self._key = self._read_key()
        self._lock = threading.Lock()
        self._limiter = Limiter(endpoint.requests_per_minute, sleep=sleep)
        self._client = None
        cache.sweep()

    def _read_key(self) -> str:
        name = self.endpoint.api_key_env
        if name is None:
            return "none"  # a local server takes any key; the client needs one
        value = os.environ.get(name, "")
        if not value.strip():
            raise EndpointError(
                f"teacher api {self.endpoint.base_url}: environment variable {name} is not set "
                "(teacher.api.api_key_env names it; export the key there)"
            )
        return value.strip()

    def scrub(self, text: str) -> str:
        """`text` with the key (should a server echo it) replaced."""
        key = self._key
        return text.replace(key, "[key]") if len(key) >= 4 else text

    def fail(self, path: str, cause: str) -> EndpointError:
        return EndpointError(f"teacher api {self.endpoint.base_url} ({path}): {self.scrub(cause)}")

    def client(self):
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self._key,
                base_url=self.endpoint.base_url,
                timeout=self.endpoint.timeout,
                max_retries=0,  # retried here: counted by kind, Retry-After honoured, jittered
                organization=None,
                project=None,
            )
        return self._client

    # -- one request ---------------------------------------------------------------------

    def send(self, path: str, body: dict[str, Any], check: Callable[[dict], str | None]):
        """The endpoint's answer to `body` (a JSON dict), checked by `check` (None: usable; a
        failure kind to retry: "malformed", "empty"); retried within the budget."""
        tries = self.endpoint.retries + 1
        last: _Retry | None = None
        for attempt in range(tries):
            if attempt:
                self.sleep(self._backoff(attempt, last))
            self._limiter.acquire()
            with self._lock:
                self.stats.attempts += 1
            try:
                answer = self._post(path, body)
                kind = check(answer)
                if kind is not None:
                    raise _Retry(kind, f"{kind} answer")
            except _Retry as retry:
                last = retry
                with self._lock:
                    self.stats.failures[retry.kind] += 1
                if retry.wait is not None:
                    self._limiter.pause(retry.wait)
                continue
            self._count(answer)
            return answer
        raise self.fail(
            path, f"{last.cause} after {tries} tries (teacher.api.retries = {tries - 1})"
        )

    def _backoff(self, attempt: int, last: _Retry | None) -> float:
        if last is not None and last.wait is not None:
            return last.wait + random.uniform(0, 0.1 * max(last.wait, 0.1))
        return random.uniform(0, min(BACKOFF_CAP, self.endpoint.backoff * 2 ** (attempt - 1)))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import openai

        client = self.client()
        create = {
            "completions": client.completions.create,
            "chat/completions": client.chat.completions.create,
            "embeddings": client.embeddings.create,
        }[path]
        try:
            return create(**body).model_dump(mode="json")
        except openai.APIStatusError as err:
            raise self._status(path, err) from None
        except openai.APITimeoutError:
            raise _Retry("timeout", f"no answer within {self.endpoint.timeout:g} s") from None
        except openai.APIConnectionError as err:
            cause = one_line(err.__cause__ or err)
            if _tls(err):
                raise self.fail(path, f"TLS failure ({cause})") from None
            raise _Retry("connection", f"cannot connect ({cause})") from None
        except (openai.APIResponseValidationError, ValueError, TypeError, KeyError) as err:
            raise _Retry("malformed", f"malformed answer ({one_line(err)[:200]})") from None

    def _status(self, path: str, err) -> BaseException:
        code = err.status_code
        said = self.scrub(one_line(err))[:200]
        if code in (429, 503) or code >= 500 or code in (408, 409):
            wait = retry_after(err.response.headers) if code in (429, 503) else None
            if wait is not None and wait > RETRY_AFTER_CAP:
                return self.fail(path, f"HTTP {code}: the server asks to wait {wait:.0f} s")
            kind = "rate_limited" if code == 429 else "server_error" if code >= 500 else "busy"
            return _Retry(kind, f"HTTP {code} ({said})", wait)
        if code == 401:
            whose = f"${self.endpoint.api_key_env}" if self.endpoint.api_key_env else "no key"
            return self.fail(path, f"HTTP 401: the key was refused ({whose}; {said})")
        if code == 403:
            return self.fail(path, f"HTTP 403: not allowed ({said})")
        if code == 404:
            return self.fail(path, f"HTTP 404: no such model or API path ({said})")
        return self.fail(path, f"HTTP {code} ({said})")

    def _count(self, answer: dict[str, Any]) -> None:
        usage = answer.get("usage") or {}
        with self._lock:
            s = self.stats
            s.calls += 1
            s.tokens_in += int(usage.get("prompt_tokens") or 0)
            s.tokens_out += int(usage.get("completion_tokens") or 0)
            if answer.get("model"):
                s.models.add(str(answer["model"]))
            at = _now()
            s.first_call = s.first_call or at
            s.last_call = at
            if any(c.get("finish_reason") == "length" for c in answer.get("choices") or []):
                s.truncated += 1

    # -- many requests ---------------------------------------------------------------------

    def cached(self, key: str) -> dict[str, Any] | None:
        entry = self.cache.get(key)
        if entry is not None:
            with self._lock:
                self.stats.cached += 1
                if entry.get("model"):
                    self.stats.models.add(str(entry["model"]))
        return entry

    def store(self, key: str, request: dict[str, Any], response: Any) -> dict[str, Any]:
        entry = {"request": request, "response": response, "at": _now()}
        if isinstance(response, dict) and response.get("model"):
            entry["model"] = response["model"]
        self.cache.put(key, entry)
        return entry

    def map(self, jobs: Iterable[Any], fn: Callable[[Any], Any], weight=lambda job: 1) -> list:
        """fn(job) for every job, `max_concurrency` at a time, results in order; the first
        error stops the rest (what was answered is cached) and is raised."""
        jobs = list(jobs)
        total = sum(weight(j) for j in jobs)
        with self._lock:
            self.stats.requests += total
        t0, done, results = time.perf_counter(), 0, [None] * len(jobs)

        def tick(n: int) -> None:
            nonlocal done
            with self._lock:
                done += n
            if self.progress is not None:  # answers a second (cached ones count: they are done)
                rate = done / max(time.perf_counter() - t0, 1e-9)
                eta = (total - done) / rate if rate > 0 else None
                self.progress(done, total, rate, eta)

        def run(i: int) -> None:
            results[i] = fn(jobs[i])
            tick(weight(jobs[i]))

        pool = ThreadPoolExecutor(self.endpoint.max_concurrency)
        try:  # Ctrl-C or a failure: queued jobs are dropped, the ones in flight finish
            futures = [pool.submit(run, i) for i in range(len(jobs))]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in finished if f.exception() is not None), None)
            if failed is not None:
                raise failed.exception()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.stats.seconds += time.perf_counter() - t0
        return results

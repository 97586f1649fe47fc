"""The one result record of every benchmark: measured (host or ssh), host-emulated, estimated.

Version SCHEMA = "edgepack.bench/1" (the runner's first records are valid instances). A
reader checks `schema` first; the number after the slash changes only when a key changes
meaning or goes away; new optional keys keep it. `python -m
packager.bench` prints the JSON Schema.

Which keys are filled depends on `kind` and `status` (checked by BenchResult):
- measured / host-emulated with status "ok": latency_ms, session_ms, first_run_ms,
  cold_start_ms, peak_rss_mb, onnxruntime and session_options are set; estimate is null.
- estimated: estimate is set; latency_ms and every other timing or RSS key is null, so an
  estimate can never be read as a measurement.
- status "does-not-fit": message says "does not fit in N MB" and why; timings are null.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from packager.bench.errors import BenchError

SCHEMA = "edgepack.bench/1"
Kind = Literal["measured", "host-emulated", "estimated"]
KINDS: tuple[str, ...] = ("measured", "host-emulated", "estimated")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Strict):
    """Per-run latency summary in ms (see packager.bench.stats.summarize)."""

    n: int = Field(ge=1)
    mean: float = Field(ge=0)
    stdev: float = Field(ge=0)
    min: float = Field(ge=0)
    p50: float = Field(ge=0)
    p90: float = Field(ge=0)
    p99: float = Field(ge=0)
    max: float = Field(ge=0)
    throughput: float | None = Field(description="items per second at the median: batch / p50")


class Machine(BaseModel):
    """Where the number comes from: host_info() of the machine that ran it, or, for an
    estimate, the target profile. Extra keys are allowed (remote machines may say more)."""

    model_config = ConfigDict(extra="allow")

    cpu: str = Field(min_length=1)
    arch: str | None = None
    logical_cores: int | None = None
    memory_mb: float | None = None
    onnxruntime: str | None = None
    isa: list[str] = Field(default_factory=list)


class MemoryCap(_Strict):
    mb: float = Field(gt=0, description="cap in MiB")
    mechanism: Literal["cgroup-v2", "RLIMIT_AS"]


class Estimate(_Strict):
    """Cost model output (packager.bench.costmodel) against the target's published peaks."""

    method: Literal["roofline"] = "roofline"
    macs: int = Field(ge=0)
    flops: int = Field(ge=0)
    params: int = Field(ge=0)
    param_bytes: int = Field(ge=0)
    activation_peak_bytes: int = Field(ge=0)
    bytes_moved: int = Field(ge=0)
    unknown_ops: int = Field(ge=0, description="ops whose shapes could not be inferred")
    latency_ms: float = Field(ge=0, description="roofline lower bound, not a measurement")
    compute_ms: float = Field(ge=0)
    memory_ms: float = Field(ge=0)
    bound: Literal["compute", "memory"]
    effective_gflops: float = Field(gt=0, description="peak scaled to the threads used")
    int8_macs: int = Field(0, ge=0, description="MACs of int8 ops (integer kernels, fused QDQ)")
    effective_int8_gops: float | None = Field(
        None,
        description="the rate int8 ops were priced at: the target's int8 peak (dot-product "
        "instructions) or, without one, its FP32 peak; scaled to the threads used",
    )
    bandwidth_gbs: float = Field(gt=0)
    sources: dict[str, str] = Field(description="where each peak figure comes from")
    model: dict[str, Any] | None = Field(
        None,
        description="the latency model's point estimate and error band (packager.bench.latency: "
        "per-op-class costs measured on the host, scaled by the target's peaks), when a host "
        "calibration was given: latency_ms, low_ms, high_ms, band, classes_ms",
    )


class LMTokens(_Strict):
    """A language model's generation speed (packager.bench.lm_child): prefill tokens/s per
    prompt length (pp128, pp512), decode tokens/s over `decode_tokens` greedy steps on the KV
    cache (tg128), time to first token, inter-token p50/p99, KV-cache growth per token."""

    prefill_tokens_per_s: dict[str, float]
    decode_tokens: int = Field(ge=1)
    decode_tokens_per_s: float = Field(gt=0)
    ttft_ms: float = Field(ge=0)
    ttft_prompt_tokens: int = Field(ge=1)
    inter_token_ms: dict[str, float]
    kv_cache_bytes_per_token: int = Field(ge=0)
    reps: int = Field(ge=1)
    prompt_tokens: int = Field(ge=1)


class BenchResult(_Strict):
    schema_: Literal["edgepack.bench/1"] = Field(SCHEMA, alias="schema")
    kind: Kind
    status: Literal["ok", "does-not-fit"] = "ok"
    target: str = Field(min_length=1, description="host, a profile name, or ssh://user@host")
    machine: Machine
    model: str
    model_name: str
    variant: str | None = Field(None, description="build variant label, e.g. student_int8")
    file_size_mb: float = Field(ge=0)
    threads: int = Field(ge=1)
    batch: int = Field(ge=1)
    inputs: dict[str, list[int]] | None = None
    guessed_dims: dict[str, int] | None = Field(
        None, description="symbolic input dims nobody gave a value for, and the value used"
    )
    input_source: Literal["generated", "samples", "given"] | None = None
    warmup: int | None = None
    runs: int | None = None
    latency_ms: Latency | None = None
    latencies_ms: list[float] | None = Field(None, description="raw per-run latencies if kept")
    session_ms: float | None = None
    first_run_ms: float | None = None
    cold_start_ms: float | None = None
    peak_rss_mb: float | None = None
    baseline_rss_mb: float | None = None
    model_rss_mb: float | None = None
    rss_source: str | None = None
    onnxruntime: str | None = None
    session_options: dict[str, Any] | None = None
    emulates: str | None = Field(None, description="host-emulated: the profile emulated")
    oversubscribed: bool | None = Field(
        None,
        description="host-emulated: more threads than this host's usable cores; such a row is "
        "flagged and left out of every comparison and average",
    )
    memory_cap: MemoryCap | None = None
    estimate: Estimate | None = None
    lm: LMTokens | None = Field(None, description="language models: tokens per second")
    message: str | None = Field(None, description="does-not-fit reason")
    notes: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> BenchResult:
        timed = ("latency_ms", "session_ms", "first_run_ms", "cold_start_ms", "peak_rss_mb")
        if self.kind == "estimated":
            if self.estimate is None:
                raise ValueError("an estimated result needs estimate")
            if any(getattr(self, k) is not None for k in (*timed, "latencies_ms")):
                raise ValueError("an estimated result cannot carry measured timings or RSS")
        elif self.estimate is not None:
            raise ValueError(f"a {self.kind} result cannot carry an estimate")
        if self.status == "does-not-fit":
            if not self.message or "does not fit" not in self.message:
                raise ValueError("a does-not-fit result needs a 'does not fit in N MB' message")
        elif self.kind != "estimated" and any(getattr(self, k) is None for k in timed):
            raise ValueError(f"an ok {self.kind} result needs {', '.join(timed)}")
        if self.kind == "host-emulated" and (self.emulates is None or self.memory_cap is None):
            raise ValueError("a host-emulated result needs emulates and memory_cap")
        return self


def validate_result(record: dict[str, Any]) -> dict[str, Any]:
    """Check `record` against the schema; return it unchanged or raise a one-line BenchError."""
    try:
        BenchResult.model_validate(record)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(x) for x in e["loc"]) or "(record)"
        msg = e["msg"].removeprefix("Value error, ")
        raise BenchError(f"benchmark record does not match {SCHEMA}: {loc}: {msg}") from None
    return record


def json_schema() -> dict[str, Any]:
    return BenchResult.model_json_schema(by_alias=True)

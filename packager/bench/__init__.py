"""Honest latency and memory benchmarks: one child process per configuration.

run_one / run_many measure a model on this host and return `measured` (or, under a
target's caps, `host-emulated`) records; run_suite runs models x targets x threads x batch
and adds `estimated` records from the cost model; every record follows schema.SCHEMA.
summarize turns raw latencies into percentiles; host_info describes the machine.
"""

from __future__ import annotations

from packager.bench.errors import BenchError
from packager.bench.machine import host_info
from packager.bench.runner import result_from_report, run_many, run_one
from packager.bench.schema import SCHEMA, validate_result
from packager.bench.stats import summarize

__all__ = [
    "SCHEMA",
    "BenchError",
    "host_info",
    "result_from_report",
    "run_many",
    "run_one",
    "summarize",
    "validate_result",
]

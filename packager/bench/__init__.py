"""Honest latency and memory benchmarks: one child process per configuration.

run_one / run_many measure a model on this host and return `measured` records
(schema "edgepack.bench/1"); summarize turns raw latencies into percentiles;
host_info describes the machine every record is labelled with.
"""

from __future__ import annotations

from packager.bench.errors import BenchError
from packager.bench.machine import host_info
from packager.bench.runner import SCHEMA, run_many, run_one
from packager.bench.stats import summarize

__all__ = ["SCHEMA", "BenchError", "host_info", "run_many", "run_one", "summarize"]

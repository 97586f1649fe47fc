"""Spec for packager/bench/schema.py: every kind of record has one validated shape."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from packager.bench import SCHEMA, BenchError, run_one, validate_result
from packager.bench.schema import BenchResult, json_schema
from packager.bench.suite import estimate
from packager.bench.targets import load_targets


@pytest.fixture(scope="module")
def measured(matmul_model: Path) -> dict:
    return run_one(matmul_model, runs=3, warmup=0, keep_raw=True)


def test_run_one_output_conforms_to_the_schema(measured: dict) -> None:
    assert measured["schema"] == SCHEMA == "edgepack.bench/1"
    assert validate_result(measured) is measured
    parsed = BenchResult.model_validate(measured)
    assert parsed.kind == "measured" and parsed.status == "ok" and parsed.target == "host"
    assert set(measured) <= set(json_schema()["properties"])


def test_an_estimated_record_conforms_and_carries_no_measurement(matmul_model: Path) -> None:
    record = estimate(matmul_model, load_targets()["rpi4"], threads=4)
    validate_result(record)
    assert record.get("latency_ms") is None and record.get("peak_rss_mb") is None
    assert record["estimate"]["latency_ms"] > 0 and record["machine"]["cpu"] == "Cortex-A72"


def test_an_estimate_dressed_as_a_measurement_is_refused(measured: dict, matmul_model) -> None:
    record = estimate(matmul_model, load_targets()["rpi4"], threads=1)
    record["latency_ms"] = measured["latency_ms"]
    with pytest.raises(BenchError, match="cannot carry measured timings"):
        validate_result(record)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "simulated"}, "kind"),
        ({"latency_ms": None}, "needs latency_ms"),
        ({"status": "does-not-fit"}, "does not fit in N MB"),
        ({"kind": "host-emulated"}, "needs emulates and memory_cap"),
        ({"surprise": 1}, "surprise"),
        ({"schema": "edgepack.bench/9"}, "schema"),
    ],
)
def test_inconsistent_records_are_refused_with_one_line(
    measured: dict, change: dict, message: str
) -> None:
    record = {**copy.deepcopy(measured), **change}
    with pytest.raises(BenchError) as exc:
        validate_result(record)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_remote_machine_may_describe_itself_with_extra_keys(measured: dict) -> None:
    record = copy.deepcopy(measured)
    record["target"] = "ssh://pi@10.0.0.2"
    record["machine"] = {**record["machine"], "cpu": "Cortex-A72", "board": "Raspberry Pi 4"}
    validate_result(record)


def test_the_json_schema_is_printable_and_names_the_version() -> None:
    schema = json.loads(json.dumps(json_schema()))
    assert schema["properties"]["schema"]["const"] == SCHEMA
    assert set(schema["properties"]["kind"]["enum"]) == {"measured", "host-emulated", "estimated"}

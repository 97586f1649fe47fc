"""Spec for packager/bench/costmodel.py: counts that match hand arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from packager.bench.costmodel import analyze, roofline
from packager.cli import cli

# conv1: out 4x8x8 = 256 positions x (3 in-channels x 3 x 3) = 6912
# dw:    out 256 positions x (1 in-channel per group x 3 x 3) = 2304
# matmul: 10 outputs x 256 = 2560;  gemm: 5 outputs x 10 = 50
HAND_MACS = 6912 + 2304 + 2560 + 50


def test_macs_of_conv_depthwise_matmul_gemm_equal_the_hand_count(cost_model: Path) -> None:
    cost = analyze(cost_model, batch=1)
    per_op = {op.name: op.macs for op in cost.ops}
    assert per_op == {
        "conv1": 6912,
        "relu": 0,
        "dw": 2304,
        "flatten": 0,
        "matmul": 2560,
        "gemm": 50,
    }
    assert cost.macs == HAND_MACS
    # FLOPs: 2 per MAC, plus Relu's 256 outputs and Gemm's 5 bias adds.
    assert cost.flops == 2 * HAND_MACS + 256 + 5
    assert cost.unknown_ops == 0


def test_macs_scale_with_the_bound_batch(cost_model: Path) -> None:
    assert analyze(cost_model, batch=3).macs == 3 * HAND_MACS
    assert analyze(cost_model, batch=3).inputs == {"x": [3, 3, 8, 8]}


def test_parameter_bytes_count_every_initializer(cost_model: Path) -> None:
    cost = analyze(cost_model)
    params = 4 * 3 * 9 + 4 * 9 + 256 * 10 + 10 * 5 + 5
    assert cost.params == params and cost.param_bytes == 4 * params


def test_peak_activation_memory_matches_the_hand_computed_lifetimes(lifetime_model: Path) -> None:
    # Bytes: x 1024, a 1024, b 2048, c 512, y 1536. Live per step (inclusive):
    # step 0 Relu: x + a = 2048; step 1 Concat: a + b = 3072;
    # step 2 MatMul: a + b + c = 3584; step 3 Concat: a + c + y = 3072.
    cost = analyze(lifetime_model)
    assert cost.activation_peak_bytes == 3584
    assert cost.param_bytes == 512 * 128 * 4  # W is a parameter, not an activation


def test_roofline_takes_the_slower_of_compute_and_memory_per_op(cost_model: Path) -> None:
    cost = analyze(cost_model)
    fast_memory = roofline(cost, peak_gflops=1.0, bandwidth_gbs=1e6, threads=4, cores=4)
    assert fast_memory["bound"] == "compute"
    assert fast_memory["latency_ms"] == pytest.approx(cost.flops / 1e9 * 1e3, rel=1e-3)
    # One of four cores gets a quarter of the peak: four times the compute time.
    one_core = roofline(cost, peak_gflops=1.0, bandwidth_gbs=1e6, threads=1, cores=4)
    assert one_core["compute_ms"] == pytest.approx(4 * fast_memory["compute_ms"])
    slow_memory = roofline(cost, peak_gflops=1e6, bandwidth_gbs=0.001, threads=4, cores=4)
    assert slow_memory["bound"] == "memory"
    assert slow_memory["latency_ms"] == pytest.approx(cost.bytes_moved / 1e6 * 1e3, rel=1e-3)


def test_inspect_prints_the_per_op_cost_table(cost_model: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", str(cost_model)])
    assert result.exit_code == 0, result.output
    assert "conv1" in result.output and "6,912" in result.output
    assert f"total MACs {HAND_MACS:,}" in result.output

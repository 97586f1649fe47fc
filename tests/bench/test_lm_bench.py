"""Benchmarks in tokens: the child times a bare generation loop on the KV cache (prefill,
decode, TTFT, inter-token), in the edgepack.bench/1 record, printed like llama-bench."""

from __future__ import annotations

from packager.bench import run_one
from packager.bench.schema import validate_result
from packager.report.lm import llama_bench_table


def test_a_decoder_is_timed_in_tokens_per_second(tiny_lm_build):
    model = tiny_lm_build.artifact("quantize").file()
    lm = {"prefill": [8, 24], "decode": 6, "reps": 2}
    r = validate_result(run_one(model, threads=1, warmup=0, runs=1, lm=lm))
    t = r["lm"]
    assert set(t["prefill_tokens_per_s"]) == {"8", "24"} and t["decode_tokens"] == 6
    assert t["ttft_prompt_tokens"] == 8 and t["ttft_ms"] == r["first_run_ms"]
    assert t["inter_token_ms"]["p50"] <= t["inter_token_ms"]["p99"]
    assert r["latency_ms"]["n"] == 12  # 6 decode steps x 2 reps
    assert t["kv_cache_bytes_per_token"] == 2 * 2 * 2 * 8 * 4  # 2 layers, 2 kv heads, dim 8, fp32
    assert r["peak_rss_mb"] > 0 and any("inter-token" in n for n in r["notes"])
    table = llama_bench_table([r])
    assert "| pp8 |" in table and "| tg6 |" in table


def test_edgepack_bench_on_a_language_model_package_prints_tokens_per_second(
    tiny_lm_build, tmp_path
):
    from click.testing import CliRunner

    from packager.cli import cli

    res = CliRunner().invoke(
        cli, ["bench", str(tiny_lm_build.package_path), "--cache-dir", str(tmp_path), "--runs", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "pp128" in res.output and "tg128" in res.output and "t/s" in res.output

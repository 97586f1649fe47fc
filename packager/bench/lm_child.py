"""Tokens per second of a decoder with a KV cache, measured inside the bench child (child.py
imports this file from its own folder, on devices too: stdlib, numpy, onnxruntime only).

What is timed is a bare generation loop, nothing else: prefill of P seeded random tokens
(pp P, tokens / second), time to first token (the prefill of the first P plus the argmax),
and decode (tg N: N greedy steps on the cache, each timed, tokens / second over their sum;
the inter-token p50/p99 are those step times). Each measurement repeats `reps` times; the
median is kept. Spec: {"prefill": [128, 512], "decode": 128, "reps": 3, "prompt": 16}.
"""

import gc
import os
import time

PAST, PRESENT = "past_key_values.", "present."


class BareDecoder:
    """The runtime's loop (edgepack_runtime.generation.Decoder), restated with nothing but
    numpy and onnxruntime: IOBinding, the cache kept in onnxruntime's values between steps, and
    one buffer per cache tensor bound as past and present where the graph's metadata says its
    attention writes into it (edgepack.kv_cache: shared-buffer)."""

    def __init__(self, session, np, capacity=256):
        self.np, self.session = np, session
        ins = {i.name: i for i in session.get_inputs()}
        self.pasts = [n for n in ins if n.startswith(PAST)]
        if "input_ids" not in ins or not self.pasts:
            raise ValueError("not a decoder with a KV cache (no input_ids / past_key_values.*)")
        first = ins[self.pasts[0]]
        self.kv_heads, self.head_dim = int(first.shape[1]), int(first.shape[3])
        self.has_mask, self.has_pos = "attention_mask" in ins, "position_ids" in ins
        self.layers = len(self.pasts) // 2
        meta = session.get_modelmeta().custom_metadata_map or {}
        self.shared = meta.get("edgepack.kv_cache") == "shared-buffer" and self.has_mask
        self.capacity = capacity

    def _values(self, positions):
        import onnxruntime as ort

        shape = (1, self.kv_heads, positions, self.head_dim)
        self.buffers = {n: self.np.zeros(shape, self.np.float32) for n in self.pasts}
        return {n: ort.OrtValue.ortvalue_from_numpy(b) for n, b in self.buffers.items()}

    def reset(self):
        self.cache, self.length = self._values(self.capacity if self.shared else 0), 0

    def step(self, ids):
        np, n = self.np, ids.shape[1]
        total = self.length + n
        if self.shared and total > self.capacity:  # grow: copy what is written
            old, self.capacity = self.buffers, max(total, 2 * self.capacity)
            self.cache = self._values(self.capacity)
            for name, buf in self.buffers.items():
                buf[:, :, : self.length] = old[name][:, :, : self.length]
        b = self.session.io_binding()
        b.bind_cpu_input("input_ids", ids)
        if self.has_mask:
            b.bind_cpu_input("attention_mask", np.ones((1, total), np.int64))
        if self.has_pos:
            b.bind_cpu_input("position_ids", np.arange(self.length, total, dtype=np.int64)[None])
        b.bind_output("logits")
        for p in self.pasts:
            b.bind_ortvalue_input(p, self.cache[p])
            present = PRESENT + p[len(PAST) :]
            if self.shared:
                b.bind_ortvalue_output(present, self.cache[p])
            else:
                b.bind_output(present)
        self.session.run_with_iobinding(b)
        out = b.get_outputs()
        if not self.shared:
            self.cache = {p: out[1 + k] for k, p in enumerate(self.pasts)}
        self.length = total
        return int(out[0].numpy()[0, -1].argmax())


def _median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def _percentile(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def measure_tokens(session, spec, np):
    dec = BareDecoder(session, np)
    rng = np.random.default_rng(0)
    vocab = next(o.shape[-1] for o in session.get_outputs() if o.name == "logits")
    vocab = vocab if isinstance(vocab, int) else 256
    reps, n = int(spec.get("reps", 3)), int(spec.get("decode", 128))
    pp, ttft = {}, None
    for length in spec.get("prefill", [128]):
        ids = rng.integers(3, vocab, (1, int(length))).astype(np.int64)
        times = []
        for _ in range(reps):
            dec.reset()
            t0 = time.perf_counter_ns()
            dec.step(ids)
            times.append((time.perf_counter_ns() - t0) / 1e6)
        pp[str(length)] = int(length) / (_median(times) / 1e3)
        if ttft is None:
            ttft = (_median(times), int(length))
    prompt = rng.integers(3, vocab, (1, int(spec.get("prompt", 16)))).astype(np.int64)
    totals, steps = [], []
    for _ in range(reps):
        dec.reset()
        token = dec.step(prompt)
        run = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            token = dec.step(np.array([[token]], np.int64))
            run.append((time.perf_counter_ns() - t0) / 1e6)
        totals.append(sum(run))
        steps += run
    return {
        "prefill_tokens_per_s": pp,
        "decode_tokens": n,
        "decode_tokens_per_s": n / (_median(totals) / 1e3),
        "ttft_ms": ttft[0],
        "ttft_prompt_tokens": ttft[1],
        "inter_token_ms": {"p50": _percentile(steps, 50), "p99": _percentile(steps, 99)},
        "kv_cache_bytes_per_token": 2 * dec.layers * dec.kv_heads * dec.head_dim * 4,
        "reps": reps,
        "prompt_tokens": int(prompt.shape[1]),
    }, steps


def lm_report(spec, session, session_ms, baseline_mb, recorded, rss_high_water):
    """The child's report for a language model: its decode steps are the latencies."""
    import numpy as np
    import onnxruntime as ort

    gc.collect()
    gc.disable()  # a collection pause inside a timed step is the harness's cost
    try:
        tokens, steps = measure_tokens(session, spec["lm"], np)
    finally:
        gc.enable()
    peak_mb, rss_source = rss_high_water()
    return {
        "ok": True,
        "latencies_ms": steps,
        "runs": len(steps),
        "session_ms": session_ms,
        "first_run_ms": tokens["ttft_ms"],
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": baseline_mb,
        "rss_source": rss_source,
        "file_size_mb": os.path.getsize(spec["model"]) / 1e6,
        "onnxruntime": ort.__version__,
        "session_options": recorded,
        "inputs": {"input_ids": [1, tokens["prompt_tokens"]]},
        "guessed_dims": {},
        "lm": tokens,
    }

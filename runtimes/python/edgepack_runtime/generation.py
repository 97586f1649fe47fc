"""Generation with a KV cache on a decoder graph (numpy + onnxruntime only).

The graph layout (optimum's `text-generation-with-past`, onnxruntime-genai's too): inputs
`input_ids` (batch, sequence), `attention_mask` (batch, past + sequence), `position_ids`
(batch, sequence) when the model takes them, and `past_key_values.{i}.key` / `.value` (batch,
kv_heads, past, head_dim); outputs `logits` (batch, sequence, vocab) and `present.{i}.key` /
`.value`, the cache with the new positions appended. A prompt is run once (prefill, past of
length 0); each later token is one step on the cache the previous step returned.

`Decoder` works on a bare session: the packager's export check, evaluation and sample
recording use it too, so every figure and the runtime share one loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError, UnsupportedPackageError

PAST, PRESENT = "past_key_values.", "present."
KV_META, SHARED = "edgepack.kv_cache", "shared-buffer"  # written by the LM exporter
_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass
class Step:
    """One forward pass: the logits of its last position and the cache after it."""

    logits: np.ndarray  # (batch, vocab) float32, last position
    all_logits: np.ndarray | None  # (batch, sequence, vocab) when asked for


class Decoder:
    """Prefill and step a decoder session with its KV cache (batch 1 unless said otherwise).

    Every step goes through onnxruntime's IOBinding: the cache stays in onnxruntime's own
    values from one step to the next (never copied out to numpy and back). A graph whose
    attention writes the new positions into the buffer it is given (GroupQueryAttention, which
    onnxruntime-genai's builder writes; metadata `edgepack.kv_cache: shared-buffer`) gets one
    buffer per cache tensor, bound as both past and present, grown by doubling when full.
    """

    def __init__(self, session: Any, shared: bool | None = None, capacity: int = 256) -> None:
        self.session = session
        inputs = {i.name: i for i in session.get_inputs()}
        self.past_names = [n for n in inputs if n.startswith(PAST)]
        if "input_ids" not in inputs or not self.past_names:
            raise UnsupportedPackageError(
                "not a decoder with a KV cache: it needs input_ids and past_key_values.* inputs "
                f"(has {sorted(inputs)})"
            )
        self.output_names = [o.name for o in session.get_outputs()]
        self.has_mask = "attention_mask" in inputs
        self.has_positions = "position_ids" in inputs
        first = inputs[self.past_names[0]]
        if not all(isinstance(d, int) for d in (first.shape[1], first.shape[3])):
            raise UnsupportedPackageError(
                f"{first.name}: the cache's heads and head size must be numbers (shape {first.shape})"
            )
        self.kv_heads, self.head_dim = int(first.shape[1]), int(first.shape[3])
        self.cache_dtype = _NP.get(first.type, np.float32)
        self.layers = len(self.past_names) // 2
        if shared is None:
            meta = session.get_modelmeta().custom_metadata_map or {}
            shared = meta.get(KV_META) == SHARED
        self.shared = bool(shared) and self.has_mask
        self.capacity = max(1, int(capacity))
        # present.{i}.* comes back as past_key_values.{i}.*: the pairs, looked up once.
        self._pairs = [(n, PRESENT + n[len(PAST) :]) for n in self.past_names]
        self._past: dict[str, Any] = {}
        self._buffers: dict[str, np.ndarray] = {}  # shared mode: the arrays the values wrap
        self._binding: Any = None  # shared mode: bound to the buffers once
        self.length = 0

    def kv_bytes_per_token(self) -> int:
        """Bytes the cache grows by per token (batch 1): keys and values of every layer."""
        return 2 * self.layers * self.kv_heads * self.head_dim * np.dtype(self.cache_dtype).itemsize

    def reset(self, batch: int = 1) -> None:
        self.length = 0
        if self.shared:  # the buffers stay: the attention reads only the first `length` positions
            if not self._buffers or next(iter(self._buffers.values())).shape[0] != batch:
                self._allocate(batch, self.capacity)
            return
        empty = np.zeros((batch, self.kv_heads, 0, self.head_dim), self.cache_dtype)
        self._past = {n: _ortvalue(empty) for n in self.past_names}

    def _allocate(self, batch: int, capacity: int) -> None:
        """Shared mode: one zeroed buffer per cache tensor, `capacity` positions long, keeping
        the positions already written."""
        shape = (batch, self.kv_heads, capacity, self.head_dim)
        old = self._buffers
        self._buffers = {n: np.zeros(shape, self.cache_dtype) for n in self.past_names}
        if old and self.length:
            for n, buf in self._buffers.items():
                buf[:, :, : self.length] = old[n][:, :, : self.length]
        self._past = {n: _ortvalue(buf) for n, buf in self._buffers.items()}
        self._binding = None

    def forward(self, ids: np.ndarray, keep_all: bool = False) -> Step:
        """Run `ids` (batch, n) after the cached positions; the cache grows by n."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise InputError(f"token ids must be (batch, n >= 1), got shape {ids.shape}")
        if not self._past:
            self.reset(ids.shape[0])
        batch, n = ids.shape
        total = self.length + n
        if self.shared and total > next(iter(self._buffers.values())).shape[2]:
            self._allocate(batch, max(total, 2 * next(iter(self._buffers.values())).shape[2]))
        binding = self._binding if self.shared else None
        if binding is None:  # logits first (values[0]), then the cache
            binding = self.session.io_binding()
            binding.bind_output("logits")
            for past, present in self._pairs:
                binding.bind_ortvalue_input(past, self._past[past])
                if self.shared:  # the attention writes positions length..total-1 into it
                    binding.bind_ortvalue_output(present, self._past[past])
                else:
                    binding.bind_output(present)
            self._binding = binding if self.shared else None  # shared: bound once per buffer
        binding.bind_cpu_input("input_ids", ids)
        if self.has_mask:
            binding.bind_cpu_input("attention_mask", np.ones((batch, total), np.int64))
        if self.has_positions:
            positions = np.arange(self.length, total, dtype=np.int64)[None]
            binding.bind_cpu_input("position_ids", np.repeat(positions, batch, 0))
        binding.bind_output("logits")  # a fresh value each step (the caller keeps the last one)
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        if not self.shared:
            self._past = {past: values[1 + k] for k, (past, _) in enumerate(self._pairs)}
        self.length = total
        logits = values[0].numpy()
        return Step(logits[:, -1], logits if keep_all else None)


def _ortvalue(array: np.ndarray) -> Any:
    """An onnxruntime value over `array`'s memory (CPU: no copy)."""
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_numpy(array)


def pick(
    logits: np.ndarray,
    rng: np.random.Generator | None,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> int:
    """The next token from one row of logits: argmax at temperature 0 (ties: the lowest id),
    else a sample from the softmax at `temperature`, cut to the top_k tokens and to the
    smallest set whose probability reaches top_p."""
    row = np.asarray(logits, np.float64).ravel()
    if temperature <= 0 or rng is None:
        return int(np.argmax(row))
    row = row / temperature
    order = np.argsort(-row, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    p = np.exp(row[order] - row[order[0]])
    p /= p.sum()
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        order, p = order[:keep], p[:keep] / p[:keep].sum()
    return int(order[rng.choice(len(order), p=p)])


def generate_ids(
    decoder: Decoder,
    prompt: Sequence[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop_ids: Sequence[int] = (),
    max_length: int | None = None,
    stop: Callable[[list[int]], bool] | None = None,
) -> Iterator[int]:
    """Yield new token ids one at a time (the prompt is prefilled once, then one step per
    token on the cache). Stops after max_new_tokens, on a stop id (not yielded), when
    `stop(generated)` says so, or at max_length positions."""
    if not prompt:
        raise InputError("the prompt has no tokens: give some text (or a BOS token)")
    if max_length and len(prompt) >= max_length:
        raise InputError(
            f"the prompt is {len(prompt):,} tokens but the model's context is {max_length:,} "
            "positions (prompt and generated tokens together): shorten the prompt"
        )
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    rng = np.random.default_rng(seed) if temperature > 0 else None
    decoder.reset(1)
    step = decoder.forward(np.asarray([list(prompt)], np.int64))
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = pick(step.logits[0], rng, temperature, top_k, top_p)
        if token in stop_ids:
            return
        out.append(token)
        yield token
        if (stop is not None and stop(out)) or (max_length and decoder.length >= max_length):
            return
        step = decoder.forward(np.asarray([[token]], np.int64))


def greedy(
    decoder: Decoder, prompt: Sequence[int], n: int, stop_ids: Sequence[int] = ()
) -> list[int]:
    """The greedy continuation of `prompt`: what every runtime must reproduce token for token."""
    return list(generate_ids(decoder, prompt, n, stop_ids=stop_ids))

"""A small OpenAI-compatible HTTP server over tiny transformers models, for the API-teacher
tests (and by hand: `python tests/api_server.py --lm FOLDER --port 8765`).

It speaks the API's JSON on 127.0.0.1 (the standard library's ThreadingHTTPServer):
  /v1/models, /v1/completions (text, logprobs with top_logprobs), /v1/chat/completions (an LM's
  answer through its chat template, or a classifier's label for the text after the prompt's
  last "Text:"), /v1/embeddings (a BERT's mean-pooled, L2-normalised vectors).
Faults are injected in order, one per POST, from `faults`: "429" (Retry-After), "503", "500",
"timeout" (answers after the client gave up), "malformed" (200 with a body that is not JSON),
"cut" (the body breaks off mid-way), "drop" (the connection closes with no answer), "empty"
(a completion of no text). A key, when set, is required (401 otherwise, its body echoing the
key it was sent, as some providers do, so the tests can check the caller scrubs it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch


class Backend:
    """The models behind the endpoints (each optional) and the fault plan."""

    def __init__(
        self,
        lm: str | Path | None = None,
        embedder: str | Path | None = None,
        labeler: str | Path | None = None,
        model_id: str = "tiny-teacher",
        key: str | None = None,
        faults: list[str] | None = None,
        delay: float = 0.0,
        retry_after: float = 0.2,
        fault_sleep: float = 3.0,
        token_ids: bool = False,
        garbage_every: int = 0,
    ):
        from tokenizers import Tokenizer
        from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

        self.model_id, self.key, self.delay = model_id, key, delay
        self.faults, self.retry_after = list(faults or []), retry_after
        self.fault_sleep = fault_sleep
        # token_ids: tokens named "token_id:N", as vLLM's return_tokens_as_token_ids does;
        # garbage_every: every Nth chat answer is prose that names no label.
        self.token_ids, self.garbage_every, self.chats = token_ids, garbage_every, 0
        self.lock = threading.Lock()  # one forward at a time; requests still overlap on the wire
        self.counts: Counter = Counter()  # path -> answered requests
        self.bodies: Counter = Counter()  # sha256 of each answered body -> times
        self.inputs: Counter = Counter()  # each text answered (embeddings, prompts) -> times
        self.lm = self.embedder = self.labeler = None
        if lm:
            self.lm = AutoModelForCausalLM.from_pretrained(str(lm)).eval()
            self.lm_tok = Tokenizer.from_file(str(Path(lm) / "tokenizer.json"))
            self.lm_tok.no_padding()
            self.lm_tok.no_truncation()
            template = Path(lm) / "chat_template.jinja"
            self.chat_template = template.read_text() if template.is_file() else None
        if embedder:
            self.embedder = AutoModel.from_pretrained(str(embedder)).eval()
            self.emb_tok = Tokenizer.from_file(str(Path(embedder) / "tokenizer.json"))
        if labeler:
            self.labeler = AutoModelForSequenceClassification.from_pretrained(str(labeler)).eval()
            self.lab_tok = Tokenizer.from_file(str(Path(labeler) / "tokenizer.json"))

    def next_fault(self) -> str | None:
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    # -- the models ----------------------------------------------------------------------

    def piece(self, token_id: int) -> str:
        if self.token_ids:
            return f"token_id:{token_id}"
        return self.lm_tok.decode([token_id], skip_special_tokens=False)

    def complete(self, prompt: str, max_tokens: int, temperature: float, k: int, seed: int):
        ids = self.lm_tok.encode(prompt).ids
        eos = self.lm.generation_config.eos_token_id
        eos = {eos} if isinstance(eos, int) else set(eos or [])
        gen = torch.Generator().manual_seed(seed or 0)
        out, lps, tops, reason = [], [], [], "length"
        with torch.no_grad():
            for _ in range(max_tokens):
                logits = self.lm(input_ids=torch.tensor([ids + out])).logits[0, -1].float()
                logp = torch.log_softmax(logits, -1)
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, -1)
                    nxt = int(torch.multinomial(probs, 1, generator=gen))
                else:
                    nxt = int(logp.argmax())
                if nxt in eos:
                    reason = "stop"
                    break
                out.append(nxt)
                lps.append(float(logp[nxt]))
                if k:
                    top = logp.topk(k)
                    tops.append(
                        {
                            self.piece(int(i)): float(v)
                            for v, i in zip(top.values, top.indices, strict=True)
                        }
                    )
        tokens = [self.piece(t) for t in out]
        return {
            "text": "".join(tokens),
            "tokens": tokens,
            "lps": lps,
            "tops": tops,
            "reason": reason,
            "prompt_tokens": len(ids),
            "completion_tokens": len(out),
        }

    def embed(self, texts: list[str]) -> list[list[float]]:
        enc = self.emb_tok.encode_batch(texts)
        n = max(len(e.ids) for e in enc)
        ids = torch.tensor([e.ids + [0] * (n - len(e.ids)) for e in enc])
        mask = torch.tensor([[1] * len(e.ids) + [0] * (n - len(e.ids)) for e in enc])
        with torch.no_grad():
            h = self.embedder(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.nn.functional.normalize(pooled, dim=-1).tolist()

    def label(self, text: str) -> str:
        text = text.rsplit("Text:", 1)[-1].strip()
        ids = torch.tensor([self.lab_tok.encode(text).ids])
        with torch.no_grad():
            logits = self.labeler(input_ids=ids).logits[0]
        return self.labeler.config.id2label[int(logits.argmax())]


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def answer(b: Backend, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The JSON answer to one request (no faults here)."""
    k = int(body.get("logprobs") or 0) if path == "/v1/completions" else 0
    if path == "/v1/chat/completions" and body.get("logprobs"):
        k = int(body.get("top_logprobs") or 0)
    temp, seed = float(body.get("temperature") or 0), int(body.get("seed") or 0)
    max_tokens = int(body.get("max_tokens") or 16)
    if path == "/v1/embeddings":
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = b.embed(inputs)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        n = sum(len(b.emb_tok.encode(t).ids) for t in inputs)
        return {"object": "list", "data": data, "model": b.model_id, "usage": _usage(n, 0)}
    if path == "/v1/completions":
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices, pt, ct = [], 0, 0
        for i, p in enumerate(prompts):
            r = b.complete(p, max_tokens, temp, k, seed)
            pt, ct = pt + r["prompt_tokens"], ct + r["completion_tokens"]
            logprobs = None
            if body.get("logprobs") is not None:
                logprobs = {
                    "tokens": r["tokens"],
                    "token_logprobs": r["lps"],
                    "top_logprobs": r["tops"],
                    "text_offset": [],
                }
            choices.append(
                {"index": i, "text": r["text"], "finish_reason": r["reason"], "logprobs": logprobs}
            )
        return {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": int(time.time()),
            "model": b.model_id,
            "choices": choices,
            "usage": _usage(pt, ct),
        }
    messages = body["messages"]
    user = messages[-1]["content"]
    if b.labeler is not None:
        text, reason, pt, ct, content = b.label(user), "stop", len(user.split()), 1, None
        b.chats += 1
        if b.garbage_every and b.chats % b.garbage_every == 0:
            text = f"I think this text is about {text}, mostly."
    else:
        prompt = "\n".join(m["content"] for m in messages)
        r = b.complete(prompt, max_tokens, temp, k, seed)
        text, reason, pt, ct = r["text"], r["reason"], r["prompt_tokens"], r["completion_tokens"]
        content = [
            {
                "token": t,
                "logprob": lp,
                "top_logprobs": [{"token": a, "logprob": v} for a, v in top.items()],
            }
            for t, lp, top in zip(
                r["tokens"], r["lps"], r["tops"] or [{}] * len(r["tokens"]), strict=True
            )
        ]
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": reason,
        "logprobs": {"content": content} if k else None,
    }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": b.model_id,
        "choices": [choice],
        "usage": _usage(pt, ct),
    }


class Handler(BaseHTTPRequestHandler):
    backend: Backend
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.backend.model_id}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        b = self.backend
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if b.key is not None and given != b.key:
            msg = f"Incorrect API key provided: {given}"
            return self._send(401, {"error": {"message": msg, "type": "invalid_request_error"}})
        if body.get("model") != b.model_id:
            return self._send(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
        if self.path not in ("/v1/completions", "/v1/chat/completions", "/v1/embeddings"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        fault = b.next_fault()
        if fault in ("429", "503"):
            return self._send(
                int(fault),
                {"error": {"message": "slow down"}},
                {"Retry-After": f"{b.retry_after:g}"},
            )
        if fault == "500":
            return self._send(500, {"error": {"message": "internal error"}})
        if fault == "timeout":
            time.sleep(b.fault_sleep)
        if fault == "drop":
            self.close_connection = True
            return
        if b.delay:
            time.sleep(b.delay)
        with b.lock:
            out = answer(b, self.path, body)
        if fault == "empty":
            for c in out.get("choices", []):
                c["text" if "text" in c else "message"] = (
                    "" if "text" in c else {"role": "assistant", "content": ""}
                )
        raw = json.dumps(out).encode()
        if fault == "malformed":
            raw = b"<html>502 Bad Gateway</html>" + raw[:20]
        if fault == "cut":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw[: len(raw) // 2])
            self.close_connection = True
            return
        if fault is None:  # only whole, well-formed answers count as served
            with b.lock:
                b.counts[self.path] += 1
                b.bodies[hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()] += 1
                given = body.get("input", body.get("prompt"))
                b.inputs.update(given if isinstance(given, list) else [given])
        self._send(200, raw)


@contextlib.contextmanager
def serve(backend: Backend, port: int = 0):
    """Run the server on 127.0.0.1 in a thread; yield (base_url, backend)."""

    handler = type("BoundHandler", (Handler,), {"backend": backend})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", backend
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lm")
    ap.add_argument("--embedder")
    ap.add_argument("--labeler")
    ap.add_argument("--model-id", default="tiny-teacher")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--stats", help="write the answered counts here (JSON) every second")
    a = ap.parse_args()
    torch.set_num_threads(1)
    backend = Backend(a.lm, a.embedder, a.labeler, a.model_id, delay=a.delay)
    with serve(backend, a.port) as (url, _):
        print(url, flush=True)
        while True:
            time.sleep(1)
            if a.stats:
                Path(a.stats).write_text(
                    json.dumps({"counts": backend.counts, "bodies": backend.bodies})
                )


if __name__ == "__main__":
    main()

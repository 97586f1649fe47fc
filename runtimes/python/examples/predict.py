"""The Python snippet in the README and the docs, run by tests/runtimes/test_python_example.py."""

import edgepack_runtime  # pip install ./runtimes/python  (numpy + onnxruntime only)
import numpy as np

pkg = edgepack_runtime.load("dist/digits.edgepack")  # checks every file's sha256 first
pred = pkg.predict(np.full(64, 8.0))  # one 8x8 image, pixels 0..16 (or a batch: N x 64)
print(pred.labels[0], round(float(pred.scores[0]), 3))

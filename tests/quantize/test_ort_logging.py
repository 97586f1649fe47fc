"""onnxruntime's nbits quantizer configures the root logger when imported; edgepack undoes it, so
a build's output is not flooded with every quantized node."""

import subprocess
import sys

CHECK = """
import logging
from packager.quantize.ort_nbits import nbits_module
nbits_module().MatMulNBitsQuantizer
root = logging.getLogger()
print(len(root.handlers), logging.getLevelName(root.level))
"""


def test_importing_the_nbits_quantizer_leaves_the_root_logger_as_it_was():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["0", "WARNING"]


def test_a_plain_import_does_change_it():
    """The reason for the wrapper: if onnxruntime stops doing this, the wrapper can go."""
    code = CHECK.replace(
        "from packager.quantize.ort_nbits import nbits_module\nnbits_module()",
        "import onnxruntime.quantization.matmul_nbits_quantizer as m\nm",
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["1", "INFO"]

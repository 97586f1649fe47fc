"""onnxruntime's nbits quantizer configures the root logger when imported; edgepack undoes it, so
a build's output is not flooded with every quantized node."""

import subprocess
import sys

CHECK = """
import logging
from packager.quantize.nbits import nbits_module
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
        "from packager.quantize.nbits import nbits_module\nnbits_module()",
        "import onnxruntime.quantization.matmul_nbits_quantizer as m\nm",
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["1", "INFO"]


def test_an_int4_table_is_written_without_a_warning_per_run(tmp_path, caplog):
    """The quantizer warns on every IR-8 model that it raises the IR version for int4, which is
    what edgepack wants: a build prints nothing for it."""
    import logging

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from packager.quantize.embeddings import int4_gathers

    table = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"], name="words")],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 32])],
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with caplog.at_level(logging.DEBUG):
        int4_gathers(path, ["words"], block_size=32, symmetric=True)
    out = onnx.load(str(path))
    assert [n.op_type for n in out.graph.node] == ["GatherBlockQuantized"]
    assert out.ir_version >= 10
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text

"""Tiny ONNX models for the benchmark tests, built once per session with onnx.helper, and a
private sshd on 127.0.0.1 for the `measured`-over-ssh tests.

The models belong in tests/tiny_models.py once that exists; they live here so that the bench
tests do not depend on torch.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime a device is likely to have
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def matmul_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = x @ W with x: [batch, 64] float32 and a fixed 64x64 W."""
    weight = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])],
        [numpy_helper.from_array(weight, "W")],
    )
    return _save(graph, tmp_path_factory.mktemp("models") / "matmul.onnx")


@pytest.fixture(scope="session")
def token_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text-model-shaped graph: int64 input_ids and attention_mask of [batch, sequence]."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
            helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["ids_f", "mask_f"], ["y"]),
        ],
        "tokens",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence"])],
    )
    return _save(graph, tmp_path_factory.mktemp("models") / "tokens.onnx")


def save_model(graph: onnx.GraphProto, path: Path) -> Path:
    """Check and save `graph` as an opset-17 model (for tests that build their own)."""
    return _save(graph, path)


@pytest.fixture(scope="session")
def cost_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Conv -> Relu -> depthwise Conv -> Flatten -> MatMul -> Gemm, MACs countable by hand.

    x [batch, 3, 8, 8]; conv1 W [4, 3, 3, 3] pad 1 -> [b, 4, 8, 8]; dw W [4, 1, 3, 3]
    group 4 pad 1 -> [b, 4, 8, 8]; flatten -> [b, 256]; MatMul W [256, 10]; Gemm B [10, 5] + C.
    """
    rng = np.random.default_rng(0)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
            helper.make_node("Conv", ["r1", "W2"], ["c2"], pads=[1, 1, 1, 1], group=4, name="dw"),
            helper.make_node("Flatten", ["c2"], ["f"], name="flatten"),
            helper.make_node("MatMul", ["f", "W3"], ["m"], name="matmul"),
            helper.make_node("Gemm", ["m", "B", "C"], ["y"], name="gemm"),
        ],
        "cost",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])],
        [
            init("W1", 4, 3, 3, 3),
            init("W2", 4, 1, 3, 3),
            init("W3", 256, 10),
            init("B", 10, 5),
            init("C", 5),
        ],
    )
    return _save(graph, tmp_path_factory.mktemp("models") / "cost.onnx")


@pytest.fixture(scope="session")
def lifetime_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A graph whose peak activation memory is worked out by hand in test_costmodel.py.

    x [1, 256] -> a = Relu(x) -> b = Concat(a, a) [1, 512] -> c = MatMul(b, W [512, 128])
    -> y = Concat(a, c) [1, 384]; `a` stays live across b and c.
    """
    weight = np.ones((512, 128), np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node("Concat", ["a", "a"], ["b"], axis=1),
            helper.make_node("MatMul", ["b", "W"], ["c"]),
            helper.make_node("Concat", ["a", "c"], ["y"], axis=1),
        ],
        "lifetimes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 384])],
        [numpy_helper.from_array(weight, "W")],
    )
    return _save(graph, tmp_path_factory.mktemp("models") / "lifetimes.onnx")


@pytest.fixture(scope="session")
def heavy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = x @ W with a 4096 x 2048 float32 W: 32 MB of weights, ~130 MB peak RSS to run."""
    weight = np.random.default_rng(0).standard_normal((4096, 2048)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "heavy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4096])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2048])],
        [numpy_helper.from_array(weight, "W")],
    )
    return _save(graph, tmp_path_factory.mktemp("models") / "heavy.onnx")


SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """A key-only sshd on 127.0.0.1:PORT; yields (target URL, client ssh options).

    Its own config, host key and authorized key live in a temp dir; the system's ssh config
    is untouched. Skips (with the reason) where OpenSSH or root is missing."""
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs OpenSSH's sshd, ssh and ssh-keygen (apt install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("a private sshd that logs in as root needs root")
    d = tmp_path_factory.mktemp("sshd")
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nLogLevel ERROR\n"
    )
    # sshd refuses to start without its privilege-separation dir, which Debian's init script
    # (not run in containers) normally creates.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {proc.stderr.read().strip()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("sshd did not listen within 15 s")
                time.sleep(0.1)
        opts = [
            "-F", "/dev/null",  # not this machine's ~/.ssh/config
            "-i", str(d / "client_key"),
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={d / 'known_hosts'}",
        ]  # fmt: skip
        yield f"ssh://root@127.0.0.1:{port}", opts
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def free_port() -> int:
    """A 127.0.0.1 port nothing listens on (just now)."""
    return _free_port()

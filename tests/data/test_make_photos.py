"""scripts/make_photos.py's jigsaw-puzzle reader: the picture is cut out of the texture at the
rectangle the puzzle's map names, and a damaged puzzle file is one error line, not a traceback."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_photos.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_photos", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _blob(name: str, data: bytes) -> bytes:
    return name.encode() + b"\n" + str(len(data)).encode() + b"\n" + data


def _encoded(pixels: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    return out.getvalue()


def _puzzle(tmp_path: Path, rect: str = "16 8 32 24") -> tuple[Path, np.ndarray]:
    """A jigzo-format puzzle: header, map, thumbnail, alpha PNG and a 64x64 texture whose
    left and right halves differ."""
    texture = np.zeros((64, 64, 3), np.uint8)
    texture[:, :32] = (200, 40, 40)
    texture[:, 32:] = (40, 40, 200)
    mapping = f"#texture map data\ncrop000 0 0 8 8 1 1 0 0 0 0\nimage {rect} 1 1\n".encode()
    data = b"PzlF\n0.1\nPZ01\nhttp://example.invalid/\n"
    data += _blob("PZ01.map", mapping)
    data += _blob("PZ01-t.jpg", _encoded(texture[::8, ::8].copy(), "JPEG"))
    data += _blob("PZ01.png", _encoded(np.zeros((8, 8, 3), np.uint8), "PNG"))
    data += _blob("PZ01.jpg", _encoded(texture, "JPEG"))
    path = tmp_path / "pz.pzl"
    path.write_bytes(data)
    return path, texture


def test_the_picture_is_the_maps_rectangle_of_the_texture(tmp_path):
    path, _ = _puzzle(tmp_path)
    picture = np.asarray(_script().jigzo_picture(path)).astype(int)
    assert picture.shape == (24, 32, 3)  # W 32 x H 24 from (16, 8)
    # x 16..48 straddles the halves: the texture's red left half, then its blue right half
    assert abs(picture[:, :14, 0].mean() - 200) < 8 and abs(picture[:, :14, 2].mean() - 40) < 8
    assert abs(picture[:, 18:, 2].mean() - 200) < 8 and abs(picture[:, 18:, 0].mean() - 40) < 8


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b.replace(b"PzlF", b"JUNK", 1),
        lambda b: b[: b.index(b"PZ01.jpg") + 14],  # the texture cut short
        lambda b: b.replace(b"image 16 8 32 24", b"image 40 8 32 24"),  # outside the texture
        lambda b: b.replace(b"\nimage ", b"\nother "),
    ],
)
def test_a_damaged_puzzle_is_refused(tmp_path, damage):
    path, _ = _puzzle(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises((ValueError, OSError)):
        _script().jigzo_picture(path)


def test_the_cli_says_a_damaged_puzzle_in_one_line(tmp_path):
    path, _ = _puzzle(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"PzlF", b"JUNK", 1))
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('mp', {str(SCRIPT)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "from pathlib import Path\n"
        f"m.sources = lambda: [(Path({str(path)!r}), 'jigzo-x.png', 'test')]\n"
        f"sys.exit(m.main(['-o', {str(tmp_path / 'out')!r}]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr

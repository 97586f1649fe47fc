"""The one atomic publish: write to a temporary name beside the destination, then rename.

Used for every file edgepack hands to a user (published packages, `quantize -o`, bench JSON and
HTML, signed packages): a crash, Ctrl-C or a full disk never leaves a half-written file under
the destination's name, and an existing destination is replaced in one step.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; when the block succeeds it is renamed to `dest`,
    when it fails it is removed."""
    from packager.errors import OutputError

    out = Path(dest)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, out)
    except OSError as err:  # full, read-only, no permission: the destination is what failed
        raise OutputError(f"{out}: cannot write it ({err.strerror or err})") from None
    finally:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)


def publish_file(src: Path, dest: str | Path) -> Path:
    """Copy `src` to `dest` through a temporary name, so `dest` is never half-written."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)


def publish_files(pairs: list[tuple[Path, str | Path]]) -> None:
    """Copy each (src, dest), all or none: every copy is written under a temporary name first,
    and the renames run last to first, so the first dest (the main output) is renamed only once
    every other one has been; any failure removes every temporary name."""
    with ExitStack() as stack:
        for src, dest in pairs:
            shutil.copyfile(src, stack.enter_context(atomic_path(dest)))


def write_text(dest: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `dest` through a temporary name."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: equal once resolved, or the same inode (a hard link)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist yet
        return False


def refuse_overwrite(dest: str | Path, inputs: dict[str, str | Path | None], what: str) -> None:
    """An output never replaces an input: InputFileError when `dest` is one of `inputs`
    (name -> path; folders are inputs too, a file inside one is not the folder)."""
    from packager.errors import InputFileError

    for name, src in inputs.items():
        if src and same_file(dest, src):
            raise InputFileError(
                f"{what} {dest}: is the input {name} ({src}); refusing to overwrite an input "
                "(choose another output path)"
            )

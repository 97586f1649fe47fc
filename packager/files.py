"""The one atomic publish: write to a temporary name beside the destination, then rename.

Used for every file edgepack hands to a user (published packages, `quantize -o`, `export -o`,
bench JSON and HTML, signed packages, keys): a crash, Ctrl-C or a full disk never leaves a
half-written file under the destination's name, and an existing destination is replaced in one
step. Files that must exist before they are published (a model-signing bundle is made from the
package file, keys need their mode from the first byte) are made in a `staging_folder` beside
the destination and moved out of it by `publish_files(..., move=True)`.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

# link() fails like this where a filesystem has no hard links (vfat, some FUSE mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def _cannot_write(out: Path, err: OSError):
    from packager.errors import OutputError

    return OutputError(f"{out}: cannot write it ({err.strerror or err})")


@contextmanager
def atomic_path(dest: str | Path, *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; when the block succeeds it is renamed to `dest`,
    when it fails it is removed. `exclusive`: an existing `dest` is never replaced, even one
    that appeared while the block ran (InputFileError)."""
    out = Path(dest)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if exclusive:
            _link_new(tmp, out)
        else:
            os.replace(tmp, out)
    except OSError as err:  # full, read-only, no permission: the destination is what failed
        raise _cannot_write(out, err) from None
    finally:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)


def _link_new(tmp: Path, out: Path) -> None:
    """Give `tmp` the name `out` unless `out` exists: link() never replaces, rename() does."""
    from packager.errors import InputFileError

    exists = InputFileError(f"{out}: already exists; refusing to overwrite it")
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise exists from None
    except OSError as err:
        if err.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(out):  # no hard links here: check, then rename (a narrow race)
            raise exists from None
        os.replace(tmp, out)


@contextmanager
def staging_folder(beside: str | Path) -> Iterator[Path]:
    """A private folder (mode 0700) beside `beside` for files made under their final names
    before they are published; removed afterwards, with whatever is left in it. A failure in
    the block is an OutputError naming `beside`."""
    out = Path(beside)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as err:
        raise _cannot_write(out, err) from None
    try:
        yield folder
    except OSError as err:
        raise _cannot_write(out, err) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish_file(src: Path, dest: str | Path) -> Path:
    """Copy `src` to `dest` through a temporary name, so `dest` is never half-written."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)


def publish_files(
    pairs: list[tuple[Path, str | Path]], *, move: bool = False, exclusive: bool = False
) -> None:
    """Copy each (src, dest), all or none: every copy is written under a temporary name first,
    and the renames run last to first, so the first dest (the main output) is renamed only once
    every other one has been; any failure removes every temporary name.

    move: each src is in a `staging_folder` beside its dest, and is renamed there, not copied
    (its mode comes along). exclusive: no dest is ever replaced (InputFileError); as none
    existed before, one that cannot be published takes back those already published."""
    from packager.errors import OutputError

    for _, dest in pairs:  # the one rename that would fail for sure: checked before any other
        if Path(dest).is_dir():
            raise OutputError(f"{dest}: is a folder; refusing to replace it with a file")
    made: list[tuple[Path, os.stat_result]] = []
    try:
        with ExitStack() as stack:
            for src, dest in pairs:
                tmp = stack.enter_context(atomic_path(dest, exclusive=exclusive))
                if move:
                    os.replace(src, tmp)
                else:
                    shutil.copyfile(src, tmp)
                made.append((Path(dest), tmp.stat()))
    except BaseException:
        if exclusive:
            for dest, ours in made:
                with suppress(OSError):
                    if os.path.samestat(dest.stat(), ours):  # the name is still our file's
                        dest.unlink()
        raise


def write_text(dest: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `dest` through a temporary name."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs: a temporary name it left is in use, not debris."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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

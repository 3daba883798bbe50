"""Output files, each rule enforced here once: checked before the work, written atomically.

- :func:`check_output_path` refuses, before any work starts, a target that is a
  directory, a symbolic link or a special file (device, FIFO, socket), or whose
  folder does not exist or is not writable: elasticnas replaces regular files only.
- :func:`atomic_write` writes through a temporary file beside the target and renames
  it into place, so the target is either the old file or the complete new one, also
  when the disk fills; the temporary file is always removed. The new file gets the
  permissions of a plain ``open(path, "w")``: ``0o666`` less the user's umask.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from elasticnas.errors import ElasticNASError


class OutputPathError(ElasticNASError):
    """An output path cannot be written, or would replace something that is not a regular file."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def check_output_path(path: str | os.PathLike[str], *, what: str = "output file") -> Path:
    """``path`` as a :class:`Path`, after checking that a regular file may be written there.

    Raises :class:`OutputPathError` (one line naming the path and what to do) otherwise.
    """
    out = Path(os.fspath(path))
    if not str(out).strip():
        raise OutputPathError(f"the {what} path is empty")
    try:
        st = out.lstat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"cannot write {what} {str(out)!r}: {_reason(exc)}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{what} {str(out)!r} is a directory; give a file name inside it")
        if stat.S_ISLNK(st.st_mode):
            raise OutputPathError(f"{what} {str(out)!r} is a symbolic link; elasticnas replaces regular files only")
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(
                f"{what} {str(out)!r} is a special file (device, FIFO or socket); elasticnas replaces regular files only"
            )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"cannot write {what} {str(out)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {what} {str(out)!r}: folder {str(parent)!r} is not writable")
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None], *, what: str = "output file") -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto ``path``.

    ``path`` is checked with :func:`check_output_path` first. An :class:`OSError` (a full
    disk included) becomes one :class:`OutputPathError` line; whatever happens, the
    temporary file is removed and ``path`` keeps its old content or gets the whole new one.
    """
    out = check_output_path(path, what=what)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise OutputPathError(f"cannot write {what} {str(out)!r}: {_reason(exc)}") from None
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:  # on disk before the rename, so a crash cannot leave a truncated target
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except OSError as exc:
        raise OutputPathError(f"cannot write {what} {str(out)!r}: {_reason(exc)}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def atomic_write_text(path: str | os.PathLike[str], text: str, *, what: str = "output file") -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    return atomic_write(path, write, what=what)

"""Files in and out, each rule enforced here once: inputs read bounded, outputs checked before the
work and written atomically.

- :func:`read_text` reads a user's input file only if it is a regular file of at most
  :data:`MAX_INPUT_BYTES` of UTF-8 text, and :func:`parse_json` parses JSON of at most
  :data:`MAX_JSON_DEPTH` levels of nesting: anything else is one :class:`InputError` line.

- :func:`check_output_path` refuses, before any work starts, a target that is a
  directory, a symbolic link or a special file (device, FIFO, socket), or whose
  folder does not exist or is not writable: elasticnas replaces regular files only.
- :func:`atomic_write` writes through a temporary file beside the target and renames
  it into place, so the target is either the old file or the complete new one, also
  when the disk fills; the temporary file is always removed. The new file gets the
  permissions of a plain ``open(path, "w")``: ``0o666`` less the user's umask.
- Folder outputs (exported models, elastic super-networks) follow the same rules with
  :func:`check_output_dir` and :func:`atomic_write_dir`: a folder is replaced only when it is
  empty or was written by elasticnas (it holds the marker file), and a new folder appears
  complete or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elasticnas.errors import ElasticNASError

MAX_INPUT_BYTES = 64 * 2**20  # configurations, lookup tables: far below this
MAX_JSON_DEPTH = 64  # a configuration nests two levels


class InputError(ElasticNASError):
    """An input file or text cannot be read: missing, not a regular file, too large, not UTF-8, not JSON."""


def read_text(path: str | os.PathLike[str], *, what: str = "input file", max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of ``path``, refused in one line when it is not a regular file (a FIFO or a device
    would block or never end) or is larger than ``max_bytes``."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise InputError(f"{what} {name!r} is a directory, not a file")
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{what} {name!r} is not a regular file (a FIFO, device or socket)")
            if st.st_size > max_bytes:
                raise InputError(f"{what} {name!r} is {st.st_size} bytes; at most {max_bytes} are read")
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} {name!r}: {_reason(exc)}") from None
    if len(data) > max_bytes:
        raise InputError(f"{what} {name!r} is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {name!r} is not UTF-8 text") from None


def parse_json(text: str, *, what: str = "input") -> Any:
    """``json.loads(text)``, with malformed, too large or too deeply nested JSON refused in one line."""
    if len(text) > MAX_INPUT_BYTES:
        raise InputError(f"{what} is longer than {MAX_INPUT_BYTES} characters")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (0 for a scalar, 1 for ``[]``), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class OutputPathError(ElasticNASError):
    """An output path cannot be written, or would replace something that is not a regular file."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _target(path: str | os.PathLike[str], what: str) -> tuple[Path, os.stat_result | None]:
    """``path`` and its ``lstat`` (None when nothing is there yet)."""
    out = Path(os.fspath(path))
    if not str(out).strip():
        raise OutputPathError(f"the {what} path is empty")
    try:
        return out, out.lstat()
    except FileNotFoundError:
        return out, None
    except OSError as exc:
        raise OutputPathError(f"cannot write {what} {str(out)!r}: {_reason(exc)}") from None


def _check_parent(out: Path, what: str) -> None:
    """The folder of ``out`` exists and is writable."""
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"cannot write {what} {str(out)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {what} {str(out)!r}: folder {str(parent)!r} is not writable")


def check_output_path(path: str | os.PathLike[str], *, what: str = "output file") -> Path:
    """``path`` as a :class:`Path`, after checking that a regular file may be written there.

    Raises :class:`OutputPathError` (one line naming the path and what to do) otherwise.
    """
    out, st = _target(path, what)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{what} {str(out)!r} is a directory; give a file name inside it")
        if stat.S_ISLNK(st.st_mode):
            raise OutputPathError(f"{what} {str(out)!r} is a symbolic link; elasticnas replaces regular files only")
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(
                f"{what} {str(out)!r} is a special file (device, FIFO or socket); "
                "elasticnas replaces regular files only"
            )
        if _is_sqlite_database(out):
            raise OutputPathError(
                f"{what} {str(out)!r} is an SQLite database (a study storage?); elasticnas does not overwrite it: "
                "choose another file name"
            )
    _check_parent(out, what)
    return out


def _is_sqlite_database(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


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


def check_output_dir(path: str | os.PathLike[str], *, marker: str, what: str = "output folder") -> Path:
    """``path`` as a :class:`Path`, after checking that a folder may be written there.

    The target must not exist, or be an empty folder, or a folder elasticnas wrote (it holds
    ``marker``); files, links and other folders are refused in one :class:`OutputPathError` line.
    """
    out, st = _target(path, what)
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise OutputPathError(f"{what} {str(out)!r} is a symbolic link; elasticnas replaces its own folders only")
        if not stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{what} {str(out)!r} exists and is not a folder; choose another name")
        try:
            entries = os.listdir(out)
        except OSError as exc:
            raise OutputPathError(f"cannot write {what} {str(out)!r}: {_reason(exc)}") from None
        if entries and marker not in entries:
            raise OutputPathError(
                f"{what} {str(out)!r} is a folder with files elasticnas did not write (no {marker}); "
                "choose a new or empty folder"
            )
    _check_parent(out, what)
    return out


def atomic_write_dir(
    path: str | os.PathLike[str], write: Callable[[str], None], *, marker: str, what: str = "output folder"
) -> Path:
    """Call ``write(tmp_dir)`` on a temporary folder beside ``path``, then move it onto ``path``.

    ``path`` is checked with :func:`check_output_dir` first, and ``write`` must create ``marker``
    in the folder. An old folder at ``path`` is replaced only after the new one is complete; the
    temporary folders are always removed. Files get the permissions of plain ``open(.., "w")``.
    """
    out = check_output_dir(path, marker=marker, what=what)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputPathError(f"cannot write {what} {str(out)!r}: {_reason(exc)}") from None
    old = None
    try:
        write(tmp)
        if not os.path.isfile(os.path.join(tmp, marker)):
            raise OutputPathError(f"{what} {str(out)!r} was not written completely ({marker} missing)")
        mode = 0o666 & ~_umask()
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                os.chmod(os.path.join(root, name), mode)
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            old = tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".old")
            os.replace(out, os.path.join(old, "previous"))
        os.replace(tmp, out)
    except OSError as exc:
        if old is not None and not out.exists():  # put the old folder back
            os.replace(os.path.join(old, "previous"), out)
        raise OutputPathError(f"cannot write {what} {str(out)!r}: {_reason(exc)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out

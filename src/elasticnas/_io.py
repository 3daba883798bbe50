"""Atomic file writing: a result is either written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from elasticnas.errors import ElasticNASError


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place.

    Raises :class:`ElasticNASError` (one line) when the location is not writable.
    """
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise ElasticNASError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ElasticNASError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out

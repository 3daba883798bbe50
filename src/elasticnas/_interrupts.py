"""Ctrl-C and SIGTERM, raised where they do no harm.

The CLI's signal handlers call :func:`interrupt`. It raises at once, or, while the main thread is
inside a :func:`held` block (every call of an SQL storage), when that block ends: a transaction or
the connection pool's lock is never left half way, so the interrupted search can still release its
trials. A second interrupt while one is held is raised at once. An interrupt swallowed on its way
(raised inside a finalizer that the garbage collector ran, whose exceptions Python only prints) is
raised again by :func:`raise_swallowed_interrupt`, which long loops call between steps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0  # held blocks under way on the main thread
_held: list[BaseException] = []  # an interrupt that arrived during one of them
_raised: list[BaseException] = []  # the interrupt raised last, until clear_interrupts()


def interrupt(exc: BaseException) -> None:
    """Raise ``exc`` (from a signal handler) now, or when the held block under way ends; a second
    interrupt while one is held is raised at once."""
    if _depth and not _held:
        _held.append(exc)
        return
    _held.clear()
    _raise(exc)


def _raise(exc: BaseException) -> None:
    _raised[:] = [exc]
    raise exc


@contextmanager
def held() -> Iterator[None]:
    """Run the block to its end before an :func:`interrupt` arriving during it is raised."""
    global _depth
    if threading.current_thread() is not threading.main_thread():  # signal handlers run on the main thread
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _held:
            _raise(_held.pop())


def raise_swallowed_interrupt() -> None:
    """Raise again the interrupt raised last, if any: a loop still running after one was raised only
    gets here because something on its way swallowed it."""
    if _raised:
        raise _raised[0]


def clear_interrupts() -> None:
    """Forget raised and held interrupts (the CLI calls it when a command has ended)."""
    _raised.clear()
    _held.clear()

"""Study storages: opening one, and every storage fault as one line.

- :func:`open_storage` turns a URL into an Optuna storage with heartbeats (so trials of a
  dead worker are re-queued). With ``create=False`` a SQLite file that does not exist is
  refused instead of being created empty (``pareto`` and ``report`` only read). Two
  processes creating one new database at once race on its schema; the loser retries.
- :func:`storage_errors` turns a fault of the database met at any time (read-only,
  locked, corrupt, full disk, unreachable server) into one :class:`StorageError` line
  naming the storage and what to do. The CLI runs every subcommand inside it.
- :class:`_FinishingRDBStorage` runs every call to its end before Ctrl-C / SIGTERM is raised
  (see :mod:`elasticnas._interrupts`).
"""

from __future__ import annotations

import functools
import inspect
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import optuna

from elasticnas._interrupts import held
from elasticnas.errors import StorageError

SCHEMES = ("sqlite:", "postgresql", "mysql")
SCHEMA_RACE_TRIES = 8  # a new database's schema is created by one process; the others retry and find it
SQLITE_LOCK_WAIT_S = 60.0  # how long a SQLite storage waits for a lock another program holds

_F = TypeVar("_F", bound=Callable[..., Any])


def _finishing(method: _F) -> _F:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with held():
            return method(*args, **kwargs)

    return call  # type: ignore[return-value]


class _FinishingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's SQL storage whose public calls finish before an :func:`interrupt` is raised."""


for _name, _method in vars(optuna.storages.RDBStorage).items():
    if not _name.startswith("_") and inspect.isfunction(_method):
        setattr(_FinishingRDBStorage, _name, _finishing(_method))


def sqlite_path(url: str) -> str | None:
    """The database file of a ``sqlite:///`` URL (``file:`` URIs too); None for memory or another scheme."""
    if not url.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except Exception:  # noqa: BLE001 - a malformed URL is reported when the engine is created
        return None
    if database and database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return None if not database or database == ":memory:" else database


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _is_schema_race(exc: BaseException) -> bool:
    text = str(exc)
    return "already exists" in text or "UNIQUE constraint failed: alembic_version" in text or "Duplicate" in text


def open_storage(
    storage: str | optuna.storages.BaseStorage | None, *, create: bool = True
) -> optuna.storages.BaseStorage:
    """A storage object from a URL (None: memory); SQL storages get heartbeats so dead workers' trials are re-queued.

    With ``create=False`` a SQLite URL whose file does not exist raises :class:`StorageError`
    (nothing is created). Raises :class:`StorageError` for an unknown scheme or a database
    that cannot be opened.
    """
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str) or not storage.startswith(SCHEMES):
        raise StorageError(
            f"cannot open storage {storage!r}: use sqlite:///FILE.db, postgresql://USER@HOST/DB or mysql://..."
        )
    path = sqlite_path(storage)
    if not create and path is not None and not os.path.isfile(path):
        raise StorageError(f"cannot open storage {storage!r}: no database file {path!r}; check the path")
    from elasticnas import study as _study  # its heartbeat settings, read now (tests shorten them)

    engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_WAIT_S}} if storage.startswith("sqlite:") else {}
    for attempt in range(SCHEMA_RACE_TRIES):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, stable since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return _FinishingRDBStorage(
                    storage,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=_study.HEARTBEAT_INTERVAL_S,
                    grace_period=_study.GRACE_PERIOD_S,
                )
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy / driver errors have many types
            if _is_schema_race(exc) and attempt + 1 < SCHEMA_RACE_TRIES:
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))  # the other process is creating the schema
                continue
            raise StorageError(f"cannot open storage {storage!r}: {_first_line(exc)}") from None
    raise AssertionError("unreachable")  # the loop returns or raises


_ADVICE = (  # (text in the driver's message, what to do)
    ("readonly", "the database is read-only; make the file and its folder writable, or work on a copy"),
    ("read-only", "the database is read-only; make the file and its folder writable, or work on a copy"),
    ("locked", "another program holds a lock on the database; wait for it to finish, then run again"),
    ("disk is full", "the disk is full; free some space, then run again (finished evaluations are kept)"),
    ("no space", "the disk is full; free some space, then run again (finished evaluations are kept)"),
    ("malformed", "the database file is damaged; restore it from a backup or use another --storage"),
    ("not a database", "the file is not a SQLite database (or is damaged); check --storage"),
    ("connect", "the database server cannot be reached; check that it runs and the URL"),
)


def _is_storage_fault(exc: BaseException) -> bool:
    """True for errors of SQLAlchemy, the database drivers or Optuna's storage layer."""
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    sqlalchemy = sys.modules.get("sqlalchemy.exc")  # nothing was opened when SQLAlchemy was never imported
    return (sqlalchemy is not None and isinstance(exc, sqlalchemy.SQLAlchemyError)) or type(exc).__module__.split(".")[
        0
    ] in ("sqlite3", "psycopg", "psycopg2", "pymysql", "MySQLdb")


def describe_fault(storage: object, exc: BaseException) -> str:
    """One line: the storage, the driver's own first line and what to do."""
    cause: BaseException = exc
    while isinstance(cause, optuna.exceptions.StorageInternalError) and cause.__cause__ is not None:
        cause = cause.__cause__  # Optuna wraps the driver's error
    detail = _first_line(getattr(cause, "orig", None) or cause)
    advice = next((a for key, a in _ADVICE if key in detail.lower()), "check the storage, then run again")
    where = f"storage {storage!r}" if storage else "the study storage"
    return f"{where} failed: {detail}; {advice}"


@contextmanager
def storage_errors(storage: object = None) -> Iterator[None]:
    """Turn a storage fault raised inside into one :class:`StorageError` line naming ``storage``."""
    try:
        yield
    except Exception as exc:
        if not _is_storage_fault(exc):
            raise
        raise StorageError(describe_fault(storage, exc)) from None

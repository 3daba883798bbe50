"""A pool of Ray actors, each building its evaluator once and then evaluating configurations."""

from __future__ import annotations

import importlib
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

from elasticnas.errors import ElasticNASError
from elasticnas.space import Config

Evaluator = Callable[[Config], Mapping[str, float]]
EvaluatorFactory = Callable[[], Evaluator]
"""A picklable callable run once in each worker; it returns ``evaluate(config) -> metrics``."""


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ElasticNASError("parallel evaluation needs Ray: pip install 'elasticnas[ray]'") from None


class _EvaluationWorker:
    """Body of a Ray actor: builds the evaluator once (super-network, data), then evaluates."""

    def __init__(self, factory: EvaluatorFactory) -> None:
        self._evaluate = factory()

    def ready(self) -> bool:
        return True

    def evaluate(self, config: Config) -> Any:
        raw = self._evaluate(config)
        return dict(raw) if isinstance(raw, Mapping) else raw  # the study checks it and says what is wrong


class RayRuntime:
    """Connect to Ray for the duration of a ``with`` block.

    ``address`` (``"auto"`` or ``"HOST:PORT"``) joins an existing cluster; otherwise a
    local runtime with ``n_workers`` CPUs is started, unless this process is already
    connected. Only a runtime started here is shut down on exit.
    """

    def __init__(self, n_workers: int | None = None, address: str | None = None) -> None:
        self.n_workers, self.address = n_workers, address
        self._started = False

    def __enter__(self) -> RayRuntime:
        ray = import_ray()
        if self.address not in (None, "auto"):
            _check_reachable(self.address)  # ray.init waits minutes on an address nobody listens on
        if ray.is_initialized():
            return self
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if self.address is not None:
            kwargs["address"] = self.address
        else:
            kwargs["address"] = "local"  # a new runtime, even when a cluster runs on this machine
            if self.n_workers is not None:
                kwargs["num_cpus"] = self.n_workers
        try:
            ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray runtime"
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            raise ElasticNASError(f"cannot connect to {where}: {lines[0] if lines else type(exc).__name__}") from None
        self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            import_ray().shutdown()
            self._started = False

    def n_cpus(self) -> int:
        """CPUs of the cluster not in use now (at least 1)."""
        return max(1, int(import_ray().available_resources().get("CPU", 1)))


class WorkerPool:
    """``n_workers`` Ray actors built with ``factory``; a dead actor is replaced on request.

    ``actor_options`` go to ``ray.remote`` (e.g. ``{"num_gpus": 1}``); the default
    reserves one CPU per actor. Ray must already be connected (see :class:`RayRuntime`).
    Raises :class:`ElasticNASError` when a worker's factory fails, or when the workers
    are not all built within ``start_timeout_s`` (the cluster lacks free resources).
    """

    def __init__(
        self,
        factory: EvaluatorFactory,
        n_workers: int,
        actor_options: Mapping[str, Any] | None = None,
        start_timeout_s: float = 300.0,
    ) -> None:
        if n_workers < 1:
            raise ElasticNASError(f"n_workers must be >= 1, got {n_workers}")
        ray = import_ray()
        self._ray = ray
        options = {"num_cpus": 1, **dict(actor_options or {}), "max_restarts": 0}
        self._actor_class = ray.remote(**options)(_EvaluationWorker)
        self._factory_ref = ray.put(factory)
        self.actors: list[Any] = []
        self.n_replaced = 0
        self._start_timeout_s = start_timeout_s
        self._options = options
        try:
            for _ in range(n_workers):
                self.actors.append(self._start())
            self._wait_ready(self.actors)
        except BaseException:
            self.close()
            raise

    def _start(self) -> Any:
        return self._actor_class.remote(self._factory_ref)

    def _wait_ready(self, actors: list[Any]) -> None:
        try:
            self._ray.get([a.ready.remote() for a in actors], timeout=self._start_timeout_s)
        except self._ray.exceptions.GetTimeoutError:
            need = ", ".join(f"{k}={v}" for k, v in self._options.items() if k.startswith("num_"))
            raise ElasticNASError(
                f"{len(actors)} evaluation workers did not start within {self._start_timeout_s:g} s; "
                f"does the Ray cluster have free resources for each ({need})?"
            ) from None
        except self._ray.exceptions.RayError as exc:
            raise ElasticNASError(f"an evaluation worker could not start: {_cause(exc)}") from None

    def submit(self, actor: Any, config: Config) -> Any:
        """Start evaluating ``config`` on ``actor``; returns the Ray object reference."""
        return actor.evaluate.remote(config)

    def replace(self, actor: Any) -> Any:
        """Kill ``actor`` (if it still runs) and start a new one in its place.

        Does not wait for the new actor to be built: work sent to it waits in its queue.
        """
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        new = self._start()
        self.actors[self.actors.index(actor)] = new
        self.n_replaced += 1
        return new

    def close(self) -> None:
        for actor in self.actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_reachable(address: str) -> None:
    """Fail fast, in one line, when nothing listens at ``HOST:PORT``."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ElasticNASError(f"cannot connect to the Ray cluster at {address!r}: write auto or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ElasticNASError(f"cannot connect to the Ray cluster at {address!r}: {reason}") from None


def _cause(exc: BaseException) -> str:
    """The user's exception inside a Ray error, as ``Type: message`` on one line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return _cause(cause)
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", last):
        return last  # already "SomeError: message", as a remote traceback ends
    return f"{type(exc).__name__}: {last}".rstrip(": ")

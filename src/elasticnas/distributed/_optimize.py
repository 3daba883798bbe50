"""Search a study with evaluations spread over a pool of Ray actors."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState
from tqdm.auto import tqdm

from elasticnas import study as _study
from elasticnas.distributed._pool import EvaluatorFactory, RayRuntime, WorkerPool, _cause, import_ray
from elasticnas.errors import ElasticNASError
from elasticnas.records import TrialRecord
from elasticnas.searchers import CheapMetric, Searcher
from elasticnas.space import Config, Seed
from elasticnas.study import Study


class _Heartbeats:
    """One thread recording the heartbeat of every trial the driver has handed to a worker."""

    def __init__(self, storage: optuna.storages.BaseStorage) -> None:
        self._storage = storage
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if is_heartbeat_enabled(storage):
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(_study.HEARTBEAT_INTERVAL_S):
            with self._lock:
                ids = list(self._ids)
            for trial_id in ids:
                try:
                    self._storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class _Job:
    trial_id: int
    config: Config
    attempts: int = 0
    actor: Any = field(default=None, repr=False)


def optimize_parallel(
    study: Study,
    evaluator: EvaluatorFactory | WorkerPool,
    n_evals: int,
    *,
    n_workers: int | None = None,
    ray_address: str | None = None,
    searcher: str | Searcher | None = None,
    seed: Seed = None,
    cheap_metrics: Mapping[str, CheapMetric] | None = None,
    max_attempts: int = 3,
    actor_options: Mapping[str, Any] | None = None,
    show_progress: bool | None = None,
    **searcher_kwargs: Any,
) -> list[TrialRecord]:
    """Like :meth:`Study.optimize`, with evaluations running on ``n_workers`` Ray actors at once.

    ``evaluator`` is a picklable callable, called once in each actor, that returns
    ``evaluate(config) -> metrics`` (so each actor loads its super-network and data
    once); or a :class:`WorkerPool` built from one, to reuse its actors across
    searches (then ``n_workers``, ``ray_address`` and ``actor_options`` are unused
    and the pool is left open). ``ray_address`` (``"auto"`` or ``"HOST:PORT"``)
    joins an existing cluster; otherwise a local runtime is started (or the one
    this process is connected to is used). ``n_workers`` defaults to the cluster's free CPUs.

    The searcher is asked for as many proposals as there are idle actors, so every
    actor stays busy. Each configuration is claimed as a trial in the study before
    it is sent, and its heartbeat is recorded while it runs, so other processes on
    the same storage never evaluate it too, and a dead driver's trials are
    re-queued when the study is reopened. When an actor dies mid-evaluation the
    actor is replaced and the configuration retried on the next idle actor, up to
    ``max_attempts`` times in all before the trial is recorded as failed. An
    exception raised by the evaluator is recorded in the trial and re-raised, as in
    :meth:`Study.optimize`. Returns the trials finished by this call.
    """
    if n_evals < 0:
        raise ElasticNASError(f"n_evals must be >= 0, got {n_evals}")
    if n_workers is not None and n_workers < 1:
        raise ElasticNASError(f"n_workers must be >= 1, got {n_workers}")
    if max_attempts < 1:
        raise ElasticNASError(f"max_attempts must be >= 1, got {max_attempts}")
    if not callable(evaluator) and not isinstance(evaluator, WorkerPool):
        raise ElasticNASError(
            f"evaluator must be a callable returning evaluate(config) or a WorkerPool, got {type(evaluator).__name__}"
        )
    cheap = dict(cheap_metrics or {})
    searcher, requeued, finished = study._warm_start(searcher, seed, cheap, searcher_kwargs)
    done = len(finished)
    if done >= n_evals:
        return []
    if isinstance(evaluator, WorkerPool):
        return _run(study, evaluator, searcher, cheap, n_evals, done, requeued, max_attempts, show_progress)
    with RayRuntime(n_workers, ray_address) as runtime:
        workers = n_workers if n_workers is not None else runtime.n_cpus()
        with WorkerPool(evaluator, min(workers, n_evals - done), actor_options) as pool:
            return _run(study, pool, searcher, cheap, n_evals, done, requeued, max_attempts, show_progress)


def _run(
    study: Study,
    pool: WorkerPool,
    searcher: Searcher,
    cheap: dict[str, CheapMetric],
    n_evals: int,
    done: int,
    requeued: list[Config],
    max_attempts: int,
    show_progress: bool | None,
) -> list[TrialRecord]:
    ray = import_ray()
    shared = not isinstance(study._storage, optuna.storages.InMemoryStorage)
    known = study._known_ids()
    idle_actors: deque[Any] = deque(pool.actors)
    retries: deque[_Job] = deque()  # claimed trials whose actor died, waiting for another actor
    running: dict[Any, _Job] = {}  # Ray object reference -> job
    new: list[TrialRecord] = []
    beats = _Heartbeats(study._storage)
    if show_progress is None:
        show_progress = False
    bar = tqdm(total=n_evals, initial=min(done, n_evals), disable=not show_progress, unit="eval", desc=study.name)
    idle_rounds = 0
    deaths_in_a_row = 0  # workers that died since the last evaluation that came back
    last_requeue = time.monotonic()

    def send(job: _Job) -> None:
        job.actor = idle_actors.popleft()
        job.attempts += 1
        beats.add(job.trial_id)
        running[pool.submit(job.actor, job.config)] = job

    def finish(job: _Job, metrics: Mapping[str, float], error: str | None) -> None:
        nonlocal done
        beats.discard(job.trial_id)
        record = study._finish_trial(job.trial_id, metrics, error)
        new.append(record)
        searcher.tell([record])
        done += 1
        bar.update(1)

    try:
        while done < n_evals or running or retries:  # what was handed out is always collected
            # 1. keep every idle actor busy: retried jobs first, then re-queued configurations, then new proposals
            while idle_actors and retries:
                send(retries.popleft())
            free = min(len(idle_actors), n_evals - done - len(running))
            if free > 0:
                if shared:  # other processes may write to the storage
                    known, finished_now, last_requeue = study._refresh_shared(searcher, requeued, last_requeue)
                    done = max(done, finished_now)  # their evaluations count toward n_evals too
                    free = min(free, n_evals - done - len(running))
                proposals = study._proposals(searcher, requeued, free, free) if free > 0 else []
                for trial_id, cfg in study._claim_each(proposals, known):
                    send(_Job(trial_id, cfg))
            if not running and done >= n_evals:
                break
            if not running:
                idle_rounds += 1
                if idle_rounds > 200:
                    raise ElasticNASError(
                        f"no new configuration could be evaluated after {done} evaluations: "
                        "the space may be exhausted, or other workers hold every proposal"
                    )
                time.sleep(min(0.05 * idle_rounds, 2.0))  # let other processes finish what they hold
                searcher.tell(study._finished())
                continue
            idle_rounds = 0
            # 2. collect whatever finished
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                job = running.pop(ref)
                try:
                    raw = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                    deaths_in_a_row += 1
                    if deaths_in_a_row > max_attempts * len(pool.actors):
                        retries.append(job)  # not its fault: re-queued by the next search
                        raise ElasticNASError(
                            f"evaluation workers keep dying ({deaths_in_a_row} in a row); last: {_cause(exc)}"
                        ) from None
                    idle_actors.append(pool.replace(job.actor))
                    if job.attempts < max_attempts:
                        retries.append(job)
                    else:
                        finish(job, {}, f"WorkerDied: the worker died {job.attempts} times evaluating it ({_cause(exc)})")
                    continue
                except ray.exceptions.RayTaskError as exc:  # the evaluator raised
                    idle_actors.append(job.actor)
                    finish(job, {}, _cause(exc))
                    cause = exc.as_instanceof_cause()
                    raise cause from None
                idle_actors.append(job.actor)
                deaths_in_a_row = 0
                try:
                    metrics, error = study._complete_metrics(raw, job.config, cheap)
                except BaseException as exc:
                    finish(job, {}, f"{type(exc).__name__}: {exc}")
                    raise
                finish(job, metrics, error)
    except BaseException:
        # interrupted or failed: what is still out is re-queued by the next search on this study
        for job in [*running.values(), *retries]:
            try:
                study._storage.set_trial_user_attr(job.trial_id, "retry", True)
                study._storage.set_trial_state_values(job.trial_id, TrialState.FAIL)
            except Exception:  # noqa: BLE001 - the heartbeat re-queues it anyway
                pass
        raise
    finally:
        beats.close()
        bar.close()
        diagnostics = searcher.diagnostics()
        if diagnostics:
            study.optuna_study.set_user_attr("searcher_diagnostics", diagnostics)
    return new

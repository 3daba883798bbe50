"""Search a study with evaluations spread over a pool of Ray actors."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from elasticnas._interrupts import raise_swallowed_interrupt
from elasticnas.distributed._pool import EvaluatorFactory, RayRuntime, WorkerPool, _cause, import_ray
from elasticnas.errors import ElasticNASError
from elasticnas.records import TrialRecord
from elasticnas.searchers import CheapMetric, Searcher
from elasticnas.space import Seed
from elasticnas.study import Study, Trial


@dataclass
class _Job:
    trial: Trial
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
    initial_configs: Sequence[Mapping[str, Any]] = (),
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
    study.set_searcher(searcher, seed=seed, cheap_metrics=cheap_metrics, initial_configs=initial_configs,
                       **searcher_kwargs)
    done = study.n_evals_seen
    if done >= n_evals:
        return []
    if isinstance(evaluator, WorkerPool):
        return _run(study, evaluator, n_evals, done, max_attempts, show_progress)
    with RayRuntime(n_workers, ray_address) as runtime:
        workers = n_workers if n_workers is not None else runtime.n_cpus()
        with WorkerPool(evaluator, min(workers, n_evals - done), actor_options) as pool:
            return _run(study, pool, n_evals, done, max_attempts, show_progress)


def _run(
    study: Study,
    pool: WorkerPool,
    n_evals: int,
    done: int,
    max_attempts: int,
    show_progress: bool | None,
) -> list[TrialRecord]:
    """The driver loop: ask for as many trials as there are idle actors, tell each result as it arrives."""
    ray = import_ray()
    idle_actors: deque[Any] = deque(pool.actors)
    retries: deque[_Job] = deque()  # claimed trials whose actor died, waiting for another actor
    running: dict[Any, _Job] = {}  # Ray object reference -> job
    new: list[TrialRecord] = []
    bar = tqdm(total=n_evals, initial=min(done, n_evals), disable=not show_progress, unit="eval", desc=study.name)
    idle_rounds = 0
    deaths_in_a_row = 0  # workers that died since the last evaluation that came back

    def send(job: _Job) -> None:
        job.actor = idle_actors.popleft()
        job.attempts += 1
        running[pool.submit(job.actor, job.trial.config)] = job

    def finish(job: _Job, metrics: Mapping[str, float] | None, error: BaseException | str | None) -> None:
        nonlocal done
        record = study.tell(job.trial, metrics, error=error)
        if record is not None:
            new.append(record)
            done += 1
            bar.update(1)

    try:
        while done < n_evals or running or retries:  # what was handed out is always collected
            raise_swallowed_interrupt()
            # 1. keep every idle actor busy: retried jobs first, then what the study asks for
            while idle_actors and retries:
                send(retries.popleft())
            free = min(len(idle_actors), n_evals - done - len(running))
            if free > 0:
                for trial in study.ask(free):
                    send(_Job(trial))
                done = max(done, study.n_evals_seen)  # other processes' evaluations, read by ask
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
                        died = f"WorkerDied: the worker died {job.attempts} times evaluating it ({_cause(exc)})"
                        finish(job, None, died)
                    continue
                except ray.exceptions.RayTaskError as exc:  # the evaluator raised
                    idle_actors.append(job.actor)
                    finish(job, None, _cause(exc))
                    cause = exc.as_instanceof_cause()
                    raise cause from None
                idle_actors.append(job.actor)
                deaths_in_a_row = 0
                finish(job, raw, None)
    except BaseException as stop:
        # interrupted or failed: what is still out is released, and re-queued by the next search on this study
        released = ElasticNASError(f"the search stopped ({type(stop).__name__}) before this evaluation came back")
        for job in [*running.values(), *retries]:
            try:
                study.tell(job.trial, error=released)
            except Exception:  # noqa: BLE001 - the heartbeat re-queues it anyway
                pass
        raise
    finally:
        bar.close()
        study.save_diagnostics()
    return new

"""Studies: every evaluated configuration is a trial in an Optuna storage."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.storages._heartbeat import (
    is_heartbeat_enabled,  # also true for the _CachedStorage optuna wraps RDBStorage in
)
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from elasticnas._interrupts import raise_swallowed_interrupt
from elasticnas.errors import ElasticNASError, EvaluationError, StorageError
from elasticnas.pareto import default_reference_point, hypervolume, hypervolume_history, non_dominated_mask
from elasticnas.records import (
    Constraint,
    Direction,
    Objective,
    TrialRecord,
    as_constraints,
    as_objectives,
    minimization_matrix,
    target_columns,
)
from elasticnas.searchers import CheapMetric, Searcher, create_searcher
from elasticnas.space import Config, SearchSpace, Seed
from elasticnas.storages import open_storage as _open_storage

if TYPE_CHECKING:
    from elasticnas.export import ExportRecord

Evaluate = Callable[[Config], Mapping[str, float]]

DEFAULT_SEARCHER = "predicted_hvi"
_ATTR = "elasticnas"  # study user attribute holding space, objectives, constraints
_VERSION = 1  # of that attribute: a study with another version is refused, never rewritten
_REFERENCE_ATTR = "elasticnas_reference_point"  # fixed by the study once it has REFERENCE_TRIALS trials
_CREATION_GRACE_S = 5.0  # how long an empty study without attributes may take to get them from its creator
_MEASUREMENT_ATTR = "elasticnas_measurement"  # how trials were measured (Measurer.settings)
_RUNS_ATTR = "elasticnas_runs"  # one entry per optimize call: searcher, seed, versions, machine
REFERENCE_TRIALS = 10
STALL_S = 10.0  # a search alone on its study gives up after proposing nothing new for this long
# user attributes of a trial that hold elasticnas bookkeeping: no metric is copied onto these names
_RESERVED_TRIAL_ATTRS = frozenset(
    {"config", "config_id", "metrics", "error", "retry", "duplicate_of", "interrupted_by"}
)
_STATES = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed"}


def _env_seconds(name: str, default: int) -> int:
    """A positive whole number of seconds from the environment (tests shorten the heartbeat this way)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        warnings.warn(f"{name} must be a positive whole number of seconds, got {text!r}; using {default}", stacklevel=2)
        return default
    return value


HEARTBEAT_INTERVAL_S = _env_seconds("ELASTICNAS_HEARTBEAT_S", 5)
GRACE_PERIOD_S = _env_seconds("ELASTICNAS_GRACE_S", 4 * HEARTBEAT_INTERVAL_S)


def _is_attempt_only(t: FrozenTrial) -> bool:
    """A failed trial that is not an evaluation: interrupted, left by a dead worker, or a lost claim."""
    attrs = t.user_attrs
    return t.state == TrialState.FAIL and (
        attrs.get("retry", False) or "duplicate_of" in attrs or "error" not in attrs
    )  # a failed evaluation always has "error"; "metrics" alone means its worker died while finishing it


class _Heartbeats:
    """One thread recording the heartbeat of every claimed, unfinished trial (SQL storages only), so a
    worker that dies is noticed and its trials re-queued (see :meth:`Study._requeue_abandoned`)."""

    def __init__(self, storage: optuna.storages.BaseStorage) -> None:
        self._storage = storage
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)
            if self._thread is None and is_heartbeat_enabled(self._storage):
                self._thread = threading.Thread(target=self._beat, daemon=True, name="elasticnas-heartbeat")
                self._thread.start()

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_INTERVAL_S)
            with self._lock:
                ids = list(self._ids)
            for trial_id in ids:
                try:
                    self._storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]  # is_heartbeat_enabled checked
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass


@dataclass(frozen=True)
class Trial:
    """A configuration claimed for evaluation by :meth:`Study.ask`: evaluate ``config``, then
    :meth:`Study.tell` the study its metrics (or the error). ``number`` is Optuna's trial number."""

    number: int
    config: Config
    config_id: str
    trial_id: int = field(repr=False)  # the storage's id of the Optuna trial


def extremes(space: SearchSpace) -> list[Config]:
    """The largest and the smallest configuration of ``space`` (the last and the first value of every
    choice): an initial design that bounds the accuracy / cost trade-off from the first evaluations."""
    return [space.from_genes(space.cardinalities - 1), space.from_genes(space.cardinalities * 0)]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _plain_seed(seed: Seed) -> int | None:
    """A seed as JSON: the integer, or None for a random or generator seed."""
    return int(seed) if isinstance(seed, int | np.integer) else None


def _params(space: SearchSpace, config: Config) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """Flatten a configuration into Optuna parameters (``ks_0``, ``ks_1``, ..., ``r``)."""
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for name, choice in space.choices.items():
        dist = CategoricalDistribution(list(choice.values))
        if choice.size is None:
            params[name], dists[name] = config[name], dist
        else:
            for i, v in enumerate(config[name]):
                params[f"{name}_{i}"], dists[f"{name}_{i}"] = v, dist
    return params, dists


class Study:
    """A multi-objective search over a :class:`SearchSpace`, backed by an Optuna study.

    Use :func:`create_study` or :func:`load_study` to get one. The Optuna study
    is available as :attr:`optuna_study`, so optuna-dashboard and
    ``optuna.visualization`` work on it unchanged.
    """

    def __init__(
        self,
        optuna_study: optuna.Study,
        space: SearchSpace,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        reference_point: Sequence[float] | None = None,
        targets: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.optuna_study = optuna_study
        self.space = space
        self.objectives = tuple(objectives)
        self.constraints = tuple(constraints)
        # hardware targets: name -> its own objectives; the others are shared by every target
        self.targets = None if targets is None else {t: tuple(m) for t, m in targets.items()}
        self._reference_point = None if reference_point is None else np.asarray(reference_point, dtype=float)
        self._storage = optuna_study._storage
        self._study_id = optuna_study._study_id
        self._shared = not isinstance(self._storage, optuna.storages.InMemoryStorage)  # other processes may write
        # ask/tell state (set_searcher): the searcher, its cheap metrics, configurations to evaluate again,
        # the ids never to evaluate again, finished evaluations seen in the storage, heartbeats of claimed trials
        self._searcher: Searcher | None = None
        self._cheap: dict[str, CheapMetric] = {}
        self._requeued: list[Config] = []
        self._known: set[str] = set()
        self._finished_seen = 0
        self._others_running = 0  # trials other workers held at the last read: a search waits for them
        self._last_requeue = 0.0
        self._beats = _Heartbeats(self._storage)
        self._held: dict[int, Trial] = {}  # claimed by this process (ask), not yet told
        self._claiming: int | None = None  # a trial being claimed, not yet held

    @property
    def name(self) -> str:
        return self.optuna_study.study_name

    # -- reading ------------------------------------------------------------------------
    def _frozen(self, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self._storage.get_all_trials(self._study_id, deepcopy=False, states=states)

    def _record(self, t: FrozenTrial) -> TrialRecord:
        attrs = t.user_attrs
        duration = t.duration.total_seconds() if t.duration is not None else None
        return TrialRecord(
            number=t.number,
            config=json.loads(attrs["config"]),
            config_id=attrs["config_id"],
            metrics=attrs.get("metrics", {}),
            state=_STATES[t.state],  # type: ignore[arg-type]  # the literal states of _STATES
            duration_s=duration,
            error=attrs.get("error"),
        )

    @property
    def trials(self) -> list[TrialRecord]:
        """Completed trials, in evaluation order."""
        return [self._record(t) for t in self._frozen((TrialState.COMPLETE,)) if "config_id" in t.user_attrs]

    @property
    def failed_trials(self) -> list[TrialRecord]:
        """Evaluations that failed (non-finite metric, evaluator error), in evaluation order."""
        return [
            self._record(t)
            for t in self._frozen((TrialState.FAIL,))
            if "config_id" in t.user_attrs and not _is_attempt_only(t)
        ]

    def _finished(self) -> list[TrialRecord]:
        """Completed and failed evaluations, in evaluation order."""
        frozen = self._frozen((TrialState.COMPLETE, TrialState.FAIL))
        return [
            self._record(t)
            for t in sorted(frozen, key=lambda t: t.number)
            if "config_id" in t.user_attrs and not _is_attempt_only(t)
        ]

    @property
    def n_evals(self) -> int:
        """Number of finished evaluations (completed or failed)."""
        return len(self._finished())

    @property
    def n_evals_seen(self) -> int:
        """:attr:`n_evals` as of the last read of the storage (by :meth:`set_searcher` or :meth:`ask` on a
        shared storage), without reading it again."""
        return self._finished_seen

    def feasible(self, records: Sequence[TrialRecord]) -> list[TrialRecord]:
        return [r for r in records if r.violation(self.constraints) == 0.0]

    def target_objectives(self, target: str | None = None) -> tuple[Objective, ...]:
        """The objectives of hardware target ``target``: those it shares with every target and its own
        (see :func:`create_study`); all objectives for ``None``."""
        return tuple(self.objectives[j] for j in self._columns(target))

    def _columns(self, target: str | None) -> list[int]:
        if target is None:
            return list(range(len(self.objectives)))
        if not self.targets or target not in self.targets:
            known = ", ".join(self.targets or ()) or "none: the study was created without targets"
            raise ElasticNASError(f"study {self.name!r} has no target {target!r}; its targets: {known}")
        return list(target_columns(self.objectives, self.targets)[target])

    def pareto_front(
        self, feasible_only: bool = True, records: Sequence[TrialRecord] | None = None, target: str | None = None
    ) -> list[TrialRecord]:
        """Completed trials on the first non-dominated front (feasible ones only by default): of
        ``records`` when given (completed trials, read before), else of the study's; over the
        objectives of hardware target ``target`` when given (:meth:`target_objectives`)."""
        records = self.trials if records is None else records
        if feasible_only:
            records = self.feasible(records)
        if not records:
            return []
        mask = non_dominated_mask(minimization_matrix(records, self.target_objectives(target)))
        return [r for r, m in zip(records, mask, strict=True) if m]

    def reference_point(self, records: Sequence[TrialRecord] | None = None, target: str | None = None) -> np.ndarray:
        """Hypervolume reference point in minimisation form: the one given, or from the worst values
        of ``records`` when given (completed trials, read before), else of the study's completed trials;
        its coordinates of ``target``'s objectives when given."""
        columns = self._columns(target)
        if self._reference_point is not None:
            point: np.ndarray = (self._reference_point * np.array([o.sign for o in self.objectives]))[columns]
            return point
        F = minimization_matrix(self.trials if records is None else records, self.objectives)
        if len(F) == 0:
            raise ElasticNASError(f"study {self.name!r} has no completed trials")
        full: np.ndarray = default_reference_point(F)
        return full[columns]

    @property
    def reference_point_fixed(self) -> bool:
        """Whether the reference point is given or stored with the study (else it follows the worst trials)."""
        return self._reference_point is not None

    def hypervolume(self, records: Sequence[TrialRecord] | None = None, target: str | None = None) -> float:
        """Hypervolume of the feasible completed trials (of ``records`` when given, read before), at
        :meth:`reference_point`; over the objectives of hardware target ``target`` when given."""
        trials = self.trials if records is None else records
        feasible = self.feasible(trials)
        if not feasible:
            return 0.0
        objectives = self.target_objectives(target)
        return hypervolume(minimization_matrix(feasible, objectives), self.reference_point(trials, target))

    def hypervolume_history(
        self, finished: Sequence[TrialRecord] | None = None, target: str | None = None
    ) -> np.ndarray:
        """Hypervolume of the feasible trials after each finished evaluation: of ``finished`` when
        given (completed and failed evaluations in evaluation order, read before), else of the study's;
        over the objectives of hardware target ``target`` when given."""
        finished = self._finished() if finished is None else finished
        objectives = self.target_objectives(target)
        F = np.array(
            [
                [o.sign * float(r.metrics[o.name]) for o in objectives]
                if r.ok and r.violation(self.constraints) == 0.0
                else [math.inf] * len(objectives)
                for r in finished
            ]
        ).reshape(len(finished), len(objectives))
        ref = self.reference_point([r for r in finished if r.ok], target)
        return hypervolume_history(F, ref) if len(F) else np.zeros(0)

    def trial(self, number: int) -> TrialRecord:
        """The finished evaluation numbered ``number`` (Optuna's trial number)."""
        for record in self._finished():
            if record.number == number:
                return record
        numbers = [r.number for r in self.trials]
        hint = f"completed trials: {numbers[0]}..{numbers[-1]}" if numbers else "the study has no completed trial"
        raise ElasticNASError(f"study {self.name!r} has no finished trial number {number}; {hint}")

    @property
    def measurement(self) -> dict[str, Any] | None:
        """How the trials were measured (super-network, weights, data, runtime, threads, ...), when recorded."""
        value = self.optuna_study.user_attrs.get(_MEASUREMENT_ATTR)
        return dict(value) if isinstance(value, Mapping) else None

    def set_measurement(self, settings: Mapping[str, Any]) -> None:
        """Record how trials are measured (see :meth:`elasticnas.measure.Measurer.settings`); a study keeps
        one measurement: different settings for an existing one are refused, naming the first that differs."""
        new = json.loads(json.dumps(dict(settings)))
        old = self.measurement
        if old is None:
            self.optuna_study.set_user_attr(_MEASUREMENT_ATTR, new)
            return
        for key in sorted(set(old) | set(new)):
            if key == "recipe" and key not in old:  # recorded before recipes: the super-network is named anyway
                continue
            if old.get(key) != new.get(key):
                raise StorageError(
                    f"study {self.name!r} was measured with {key}={old.get(key)!r}, not {new.get(key)!r}; "
                    "resume with the same settings or choose another study name"
                )

    @property
    def runs(self) -> list[dict[str, Any]]:
        """One entry per search run on this study: searcher, seed, versions, machine, start time."""
        return list(self.optuna_study.user_attrs.get(_RUNS_ATTR, []))

    def _record_run(self, searcher: str | Searcher | None, seed: Seed) -> None:
        from elasticnas._environment import run_facts

        name = type(searcher).__name__ if isinstance(searcher, Searcher) else searcher or DEFAULT_SEARCHER
        entry = {"searcher": name, "seed": _plain_seed(seed), **run_facts()}
        self.optuna_study.set_user_attr(_RUNS_ATTR, [*self.runs, entry])

    # -- choosing what to deploy ------------------------------------------------------------------
    def select(
        self,
        *,
        max_drop: Mapping[str, float] | None = None,
        bounds: Mapping[str, float] | None = None,
        optimize: str | None = None,
    ) -> TrialRecord:
        """The best feasible trial on objective ``optimize`` among those that keep every objective in
        ``max_drop`` within that much of its best value and satisfy ``bounds`` (an upper bound for a
        minimised metric, a lower bound for a maximised one).

        ``optimize`` defaults to the first objective that is neither in ``max_drop`` nor in ``bounds``.
        For example ``select(max_drop={"accuracy_top1": 1.0}, optimize="latency_ms")``: the fastest
        trial within one point of the best accuracy.
        """
        max_drop, bounds = dict(max_drop or {}), dict(bounds or {})
        directions = {o.name: o.direction for o in self.objectives}
        for name, value in [*max_drop.items(), *bounds.items()]:
            if name not in directions:
                raise ElasticNASError(f"{name!r} is not an objective of study {self.name!r}; objectives: "
                                      f"{', '.join(directions)}")
            if not math.isfinite(float(value)) or (name in max_drop and value < 0):
                raise ElasticNASError(f"the bound on {name!r} must be a finite number (>= 0 for a drop), got {value!r}")
        if optimize is None:
            free = [n for n in directions if n not in max_drop and n not in bounds]
            if not free:
                raise ElasticNASError("every objective is bounded: name the one to optimise")
            optimize = free[0]
        elif optimize not in directions:
            raise ElasticNASError(f"{optimize!r} is not an objective of study {self.name!r}; objectives: "
                                  f"{', '.join(directions)}")
        front = self.pareto_front()
        if not front:
            raise ElasticNASError(f"study {self.name!r} has no feasible completed trial yet")
        sign = {n: (1.0 if d == "minimize" else -1.0) for n, d in directions.items()}  # smaller is better
        best = {n: min(sign[n] * r.metrics[n] for r in front) for n in max_drop}
        chosen = [
            r for r in front
            if all(sign[n] * r.metrics[n] <= best[n] + drop for n, drop in max_drop.items())
            and all(sign[n] * r.metrics[n] <= sign[n] * bound for n, bound in bounds.items())
        ]
        if not chosen:
            limits = ", ".join(
                f"{n} {'<=' if sign[n] > 0 else '>='} {b:g} "
                f"(best on the front: {sign[n] * min(sign[n] * r.metrics[n] for r in front):g})"
                for n, b in bounds.items()
            )
            raise ElasticNASError(f"no feasible trial of study {self.name!r} meets {limits}")
        return min(chosen, key=lambda r: (sign[optimize] * r.metrics[optimize], r.number))

    def best_under(self, optimize: str | None = None, **bounds: float) -> TrialRecord:
        """The best feasible trial within ``bounds``, e.g. ``best_under(latency_ms=0.1)``: see :meth:`select`."""
        return self.select(bounds=bounds, optimize=optimize)

    def export(
        self,
        number: int,
        format: str = "onnx",  # noqa: A002 - the name export_subnet takes
        path: str | os.PathLike[str] | None = None,
        *,
        calibration_data: Any = None,
        val_data: Any = None,
        recalibrate: bool = True,
        atol: float = 1e-4,
    ) -> ExportRecord:
        """Export trial ``number`` as measured: the super-network, weights and calibration that the study
        recorded (:attr:`measurement`), checked against PyTorch; the exported file's own accuracy on the
        recorded validation data is in the returned record beside the accuracy the study recorded.

        ``calibration_data`` / ``val_data`` replace the recorded data (needed where the study was
        measured on in-memory data).
        """
        from elasticnas.data._spec import resolve_data
        from elasticnas.export import export_subnet
        from elasticnas.measure.accuracy import Calibration
        from elasticnas.supernets import rebuild_supernet

        settings = self.measurement
        if settings is None:
            raise ElasticNASError(
                f"study {self.name!r} does not record a super-network (it was not searched with "
                "supernet_problem or 'elasticnas search --supernet'); use export_subnet(supernet, config, ...)"
            )
        record = self.trial(number)
        # studies recorded before recipes name a registered super-network and its weights
        supernet = rebuild_supernet(settings.get("recipe") or {"supernet": settings["supernet"],
                                                               "weights": settings.get("weights")})
        calib = calibration_data if calibration_data is not None else settings.get("calib_data")
        calibration = None
        if calib is not None and recalibrate:
            calibration = Calibration(resolve_data(calib), settings.get("calib_batches", 50),
                                      settings.get("eval_batch_size", 64), settings.get("seed", 0))
        exported = export_subnet(
            supernet, record.config, format, path,  # type: ignore[arg-type]  # checked by export_subnet
            calibration_data=calibration,
            recalibrate=recalibrate,
            val_data=val_data if val_data is not None else settings.get("val_data"),
            val_batches=settings.get("max_val_batches"),
            atol=atol,
        )
        loss = record.metrics.get("loss")
        if loss is None and "perplexity" in record.metrics:
            loss = math.log(record.metrics["perplexity"])
        return replace(exported, trial=number, recorded_accuracy_top1=record.metrics.get("accuracy_top1"),
                       recorded_loss=loss)

    # -- writing ----------------------------------------------------------------------------
    def _fix_reference_point(self, records: Sequence[TrialRecord]) -> None:
        """Store the hypervolume reference point of ``records`` (completed trials) once they number
        :data:`REFERENCE_TRIALS`, unless one is fixed already: later hypervolumes are then comparable
        and never fall."""
        if self._reference_point is not None or len(records) < REFERENCE_TRIALS:
            return
        ref_min = default_reference_point(minimization_matrix(records, self.objectives))
        point = [float(o.sign * x) for o, x in zip(self.objectives, ref_min, strict=True)]
        self.optuna_study.set_user_attr(_REFERENCE_ATTR, point)
        self._reference_point = np.asarray(point, dtype=float)

    def _sync_known(self) -> set[str]:
        """Read the storage once: the ids of configurations finished or being evaluated (never to be
        evaluated again), the number of finished evaluations (kept as ``_finished_seen``), and, when a
        searcher is set, the finished evaluations it has not seen (other workers'), told to it."""
        known: set[str] = set()
        finished = others_running = 0
        unseen = []
        history = self._searcher.history if self._searcher is not None else {}
        for t in self._frozen((TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING)):
            if "config_id" in t.user_attrs and not _is_attempt_only(t):
                known.add(t.user_attrs["config_id"])
                if t.state == TrialState.RUNNING:
                    others_running += t._trial_id not in self._held
                    continue
                finished += 1
                if self._searcher is not None and t.user_attrs["config_id"] not in history:
                    unseen.append(self._record(t))
        self._finished_seen, self._others_running = finished, others_running
        if self._searcher is not None:
            self._searcher.tell(sorted(unseen, key=lambda r: r.number))
        return known

    def _requeue_abandoned(self) -> list[Config]:
        """Fail trials whose worker stopped beating, and return the configurations left unevaluated."""
        if is_heartbeat_enabled(self._storage):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.optuna_study)
        known = self._sync_known()
        out: dict[str, Config] = {}
        for t in self._frozen((TrialState.FAIL,)):
            cid = t.user_attrs.get("config_id")
            if cid and cid not in known and "duplicate_of" not in t.user_attrs and _is_attempt_only(t):
                out[cid] = json.loads(t.user_attrs["config"])
        return list(out.values())

    def _start_trial(self, config: Config, config_id: str) -> int | None:
        """A RUNNING trial for ``config`` (None when an Optuna worker took it while it waited).

        With heartbeats the trial is created WAITING and runs only once its first heartbeat is recorded: Optuna
        never finds a RUNNING trial without a heartbeat stale, so a worker killed between the two would leave it
        RUNNING for good; killed there now, it leaves a WAITING trial, which no search counts."""
        params, dists = _params(self.space, config)
        beats = is_heartbeat_enabled(self._storage)
        template = optuna.trial.create_trial(
            state=TrialState.WAITING if beats else TrialState.RUNNING,
            params=params,
            distributions=dists,
            user_attrs={"config": json.dumps(config), "config_id": config_id},
        )
        trial_id = self._storage.create_new_trial(self._study_id, template_trial=template)
        self._claiming = trial_id  # until it is held or refused: released if the search stops in between
        if beats:
            self._storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]  # is_heartbeat_enabled checked
            if not self._storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                self._claiming = None
                return None
        return trial_id

    def _claim(self, config: Config, config_id: str) -> int | None:
        """Start a trial for ``config``, or None when another worker holds or finished it first."""
        trial_id = self._start_trial(config, config_id)
        if trial_id is None:
            return None
        if isinstance(self._storage, optuna.storages.InMemoryStorage):
            return trial_id  # one process: the caller's duplicate check suffices
        number = self._storage.get_trial_number_from_id(trial_id)
        rivals = [
            t.number
            for t in self._frozen((TrialState.RUNNING, TrialState.COMPLETE, TrialState.FAIL))
            if t.user_attrs.get("config_id") == config_id and t.number != number and not _is_attempt_only(t)
            and (t.state != TrialState.RUNNING or t.number < number)
        ]
        if rivals:
            self._storage.set_trial_user_attr(trial_id, "duplicate_of", min(rivals))
            self._storage.set_trial_state_values(trial_id, TrialState.FAIL)
            self._claiming = None
            return None
        return trial_id

    def _finish_trial(self, trial_id: int, metrics: Mapping[str, float], error: str | None) -> TrialRecord:
        if metrics:
            self._storage.set_trial_user_attr(trial_id, "metrics", dict(metrics))
            for name, value in metrics.items():  # one column each in Optuna's trials_dataframe()
                if name not in _RESERVED_TRIAL_ATTRS:
                    self._storage.set_trial_user_attr(trial_id, name, value)
        if error is None:
            values = [float(metrics[o.name]) for o in self.objectives]
            if self.constraints:  # where Optuna's samplers, best_trials and optuna-dashboard read feasibility
                violations = [c.violation(float(metrics[c.metric])) for c in self.constraints]
                self._storage.set_trial_system_attr(trial_id, _CONSTRAINTS_KEY, violations)
            self._storage.set_trial_state_values(trial_id, TrialState.COMPLETE, values)
        else:
            self._storage.set_trial_user_attr(trial_id, "error", error)
            self._storage.set_trial_state_values(trial_id, TrialState.FAIL)
        self._held.pop(trial_id, None)
        return self._record(self._storage.get_trial(trial_id))

    def _check_metrics(self, raw: Any) -> tuple[dict[str, float], str | None]:
        """Validate what an evaluator returned: (metrics, failure reason or None)."""
        if not isinstance(raw, Mapping):
            raise EvaluationError(f"evaluate must return a dict of metrics, got {type(raw).__name__}")
        metrics: dict[str, float] = {}
        for key, value in raw.items():
            try:
                metrics[str(key)] = float(value)
            except OverflowError:  # an int beyond float range: as unusable as inf, so the trial fails
                metrics[str(key)] = math.inf if value > 0 else -math.inf
            except (TypeError, ValueError):
                raise EvaluationError(f"metric {key!r} is not a number: {value!r}"[:300]) from None
        for kind, names in (("objective", [o.name for o in self.objectives]),
                            ("constraint metric", [c.metric for c in self.constraints])):
            missing = [n for n in names if n not in metrics]
            if missing:
                raise EvaluationError(
                    f"the evaluator did not return {kind} {missing[0]!r}; "
                    f"it returned: {', '.join(metrics) or 'nothing'}"
                )
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            return {k: v for k, v in metrics.items() if math.isfinite(v)}, f"non-finite metric {bad[0]!r}"
        return metrics, None

    def _complete_metrics(
        self, raw: Any, config: Config, cheap_metrics: Mapping[str, CheapMetric]
    ) -> tuple[dict[str, float], str | None]:
        """What an evaluator returned for ``config``, with the cheap metrics it left out added,
        validated by :meth:`_check_metrics`."""
        if isinstance(raw, Mapping):  # anything else is refused, in one line, by _check_metrics
            raw = dict(raw)
            for name, fn in cheap_metrics.items():
                raw.setdefault(name, fn(config))
        return self._check_metrics(raw)


    # -- ask / tell ---------------------------------------------------------------------------------
    @property
    def searcher(self) -> Searcher | None:
        """The searcher :meth:`ask` draws from (see :meth:`set_searcher`), or None before the first."""
        return self._searcher

    def set_searcher(
        self,
        searcher: str | Searcher | None = None,
        *,
        seed: Seed = None,
        cheap_metrics: Mapping[str, CheapMetric] | None = None,
        initial_configs: Sequence[Mapping[str, Any]] = (),
        **searcher_kwargs: Any,
    ) -> Searcher:
        """Set the searcher that :meth:`ask` draws proposals from: a :class:`Searcher`, or one created by
        name (default :data:`DEFAULT_SEARCHER`) with ``seed`` and ``searcher_kwargs``. It is told every
        finished evaluation of the study; ``cheap_metrics`` are computed exactly for every candidate, and
        :meth:`tell` adds those a result lacks. ``initial_configs`` (e.g. the extremes of the space, see
        :func:`extremes`) are asked first, after what dead workers left, unless the study holds them or
        they break a constraint on a cheap metric. The run is recorded in :attr:`runs`."""
        self._record_run(searcher, seed)
        self._cheap = dict(cheap_metrics or {})
        if not isinstance(searcher, Searcher):
            if self.targets is not None:  # searchers that know targets weigh each target's front alike
                searcher_kwargs = {"targets": self.targets, **searcher_kwargs}
            searcher = create_searcher(
                searcher or DEFAULT_SEARCHER,
                self.space,
                self.objectives,
                constraints=self.constraints,
                cheap_metrics=self._cheap,
                seed=seed,
                **searcher_kwargs,
            )
        self._requeued = self._requeue_abandoned()
        finished = self._finished()
        searcher.tell(finished)
        self._searcher = searcher
        self._known = self._sync_known()
        self._requeued += self._initial(initial_configs)
        self._last_requeue = time.monotonic()
        self._fix_reference_point([r for r in finished if r.ok])
        return searcher

    def _initial(self, configs: Sequence[Mapping[str, Any]]) -> list[Config]:
        """The configurations of ``configs`` not held by the study and feasible on the cheap metrics."""
        out: dict[str, Config] = {}
        for raw in configs:
            config = self.space.validate(raw)
            config_id = self.space.config_id(config)
            cheap = {name: fn(config) for name, fn in self._cheap.items()}
            feasible = all(c.violation(cheap[c.metric]) == 0.0 for c in self.constraints if c.metric in cheap)
            if config_id not in self._known and feasible:
                out.setdefault(config_id, config)
        return list(out.values())

    def ask(self, n: int = 1) -> list[Trial]:
        """Claim up to ``n`` configurations to evaluate: first those a dead or interrupted worker left
        unfinished, then new proposals of the searcher (the default one unless :meth:`set_searcher` chose).

        Each is recorded as a RUNNING trial whose heartbeat is kept until :meth:`tell`, so no other
        process on the storage evaluates it and a dead worker's trial is re-queued. Returns fewer
        trials (possibly none) when the searcher has nothing new or other workers hold its proposals.
        """
        if n < 1:
            raise ElasticNASError(f"ask needs n >= 1, got {n}")
        return self._ask(n, n)

    def _ask(self, n_requeued: int, n_new: int) -> list[Trial]:
        """Up to ``n_requeued`` re-queued configurations if any, else up to ``n_new`` new proposals, claimed."""
        searcher = self._searcher or self.set_searcher()
        if self._shared:
            self._refresh_shared()
        if self._requeued:
            proposals = self._requeued[:n_requeued]
            del self._requeued[:n_requeued]
        else:
            proposals = searcher.ask(n_new)
        trials = []
        for config in proposals:
            config_id = self.space.config_id(config)
            trial_id = None if config_id in self._known else self._claim(config, config_id)
            if trial_id is None:
                continue  # another worker holds or finished it; its result arrives through the storage
            trials.append(self._hold(Trial(self._storage.get_trial_number_from_id(trial_id), config, config_id,
                                           trial_id)))
        return trials

    def _hold(self, trial: Trial) -> Trial:
        """Note a claimed trial as this process's until it is told: heartbeat, known, released on a stop."""
        self._known.add(trial.config_id)
        self._held[trial.trial_id] = trial
        self._claiming = None
        self._beats.add(trial.trial_id)
        return trial

    def _release_held(self, cause: BaseException) -> None:
        """Release every trial this process claimed and has not told (a search that stops mid-way)."""
        claiming, self._claiming = self._claiming, None
        try:
            if claiming is not None:
                self._mark_retry(claiming, cause)
        except Exception:  # noqa: BLE001 - the heartbeat's absence re-queues it later anyway
            pass
        for trial in list(self._held.values()):
            try:
                self._beats.discard(trial.trial_id)
                self._release(trial, cause)
            except Exception:  # noqa: BLE001 - as above
                pass

    def _refresh_shared(self) -> None:
        """Catch up with the other processes on a shared storage: more than :data:`HEARTBEAT_INTERVAL_S`
        after the last look (a worker may have died), re-queue the configurations of abandoned trials;
        mark what other workers hold pending in the searcher and tell it what they finished."""
        if time.monotonic() - self._last_requeue > HEARTBEAT_INTERVAL_S:
            self._requeued += self._requeue_abandoned()
            self._last_requeue = time.monotonic()
        self._known = self._sync_known()
        if self._searcher is not None:
            self._searcher.pending.update(self._known - set(self._searcher.history))

    def tell(
        self,
        trial: Trial,
        metrics: Mapping[str, float] | None = None,
        *,
        error: BaseException | str | None = None,
    ) -> TrialRecord | None:
        """Finish ``trial`` (from :meth:`ask`) with the ``metrics`` its evaluation returned, or the
        ``error`` it raised, and tell the searcher.

        A non-finite metric or an error fails the trial: that configuration was evaluated. An
        interruption (``KeyboardInterrupt``, ``SystemExit``) or a usage error
        (:class:`ElasticNASError`) releases it instead, to be evaluated again when the search
        resumes, and returns None. Metrics the study cannot use (an objective missing, not a number)
        release the trial and raise :class:`EvaluationError`.
        """
        record = self._settle(trial, metrics, error, self._cheap)
        if record is not None and self._searcher is not None:
            self._searcher.tell([record])
        return record

    def _settle(
        self,
        trial: Trial,
        raw: Any,
        error: BaseException | str | None,
        cheap_metrics: Mapping[str, CheapMetric],
    ) -> TrialRecord | None:
        """Record the outcome of ``trial`` (see :meth:`tell`) without telling the searcher."""
        self._beats.discard(trial.trial_id)  # it stays held until its outcome is written
        if error is None and raw is None:
            self._release(trial, ElasticNASError("tell got neither metrics nor an error"))
            raise ElasticNASError("tell needs the evaluation's metrics or error=")
        if isinstance(error, KeyboardInterrupt | SystemExit | ElasticNASError):
            self._release(trial, error)
            return None
        if error is not None:
            return self._finish_trial(trial.trial_id, {}, error if isinstance(error, str) else _describe(error))
        try:
            metrics, failure = self._complete_metrics(raw, trial.config, cheap_metrics)
        except ElasticNASError as exc:
            self._release(trial, exc)
            raise
        except BaseException as exc:  # a cheap metric raised: this configuration cannot be measured
            self._finish_trial(trial.trial_id, {}, _describe(exc))
            raise
        return self._finish_trial(trial.trial_id, metrics, failure)

    def _release(self, trial: Trial, cause: BaseException) -> None:
        """Not an outcome of this configuration (an interruption, or a usage error such as unreadable
        data or a missing objective): it is evaluated again, first, by the next :meth:`ask` here or by
        the search that resumes the study."""
        self._mark_retry(trial.trial_id, cause)
        self._held.pop(trial.trial_id, None)
        self._known.discard(trial.config_id)
        self._requeued.append(trial.config)

    def _mark_retry(self, trial_id: int, cause: BaseException) -> None:
        self._storage.set_trial_user_attr(trial_id, "retry", True)
        self._storage.set_trial_user_attr(trial_id, "interrupted_by", _describe(cause))
        self._storage.set_trial_state_values(trial_id, TrialState.FAIL)

    def _evaluate(self, trial: Trial, evaluate: Evaluate, cheap_metrics: Mapping[str, CheapMetric]) -> TrialRecord:
        """Run ``evaluate`` on a claimed trial and record the outcome; what it raised is re-raised."""
        try:
            raw = evaluate(trial.config)
        except BaseException as exc:
            self._settle(trial, None, exc, cheap_metrics)
            raise
        record = self._settle(trial, raw, None, cheap_metrics)
        assert record is not None  # metrics either finish the trial or raise
        return record

    def evaluate_config(
        self, evaluate: Evaluate, config: Config, cheap_metrics: Mapping[str, CheapMetric] | None = None
    ) -> TrialRecord | None:
        """Evaluate one configuration and record it as a trial (the searcher, if set, is told).

        Returns None (and evaluates nothing) when the study already holds the configuration.
        """
        config = self.space.validate(config)
        config_id = self.space.config_id(config)
        trial_id = self._claim(config, config_id)
        if trial_id is None:
            return None
        trial = self._hold(Trial(self._storage.get_trial_number_from_id(trial_id), config, config_id, trial_id))
        record = self._evaluate(trial, evaluate, self._cheap if cheap_metrics is None else cheap_metrics)
        if self._searcher is not None:
            self._searcher.tell([record])
        return record

    def optimize(
        self,
        evaluate: Evaluate,
        n_evals: int,
        searcher: str | Searcher | None = None,
        seed: Seed = None,
        cheap_metrics: Mapping[str, CheapMetric] | None = None,
        round_size: int = 1,
        show_progress: bool | None = None,
        initial_configs: Sequence[Mapping[str, Any]] = (),
        **searcher_kwargs: Any,
    ) -> list[TrialRecord]:
        """Evaluate configurations until the study holds ``n_evals`` finished evaluations: a loop of
        :meth:`ask` (``round_size`` at a time), ``evaluate`` and :meth:`tell`.

        ``evaluate(config)`` returns a dict of metrics including every
        objective; ``cheap_metrics`` are computed exactly for any candidate (and
        may be objectives or constraints). A study reopened with the same
        ``n_evals`` continues where it stopped, first re-evaluating what a dead
        or interrupted worker left unfinished, then ``initial_configs`` (see
        :meth:`set_searcher`); no configuration is evaluated twice, also with
        several processes on one storage. Returns the trials finished by this call.
        """
        if n_evals < 0:
            raise ElasticNASError(f"n_evals must be >= 0, got {n_evals}")
        if round_size < 1:
            raise ElasticNASError(f"round_size must be >= 1, got {round_size}")
        searcher = self.set_searcher(searcher, seed=seed, cheap_metrics=cheap_metrics,
                                     initial_configs=initial_configs, **searcher_kwargs)
        done = self._finished_seen
        new: list[TrialRecord] = []
        completed = [r for r in searcher.history.values() if r.ok]
        if show_progress is None:
            show_progress = sys.stderr.isatty()
        bar = tqdm(total=n_evals, initial=min(done, n_evals), disable=not show_progress, unit="eval", desc=self.name)
        idle, idle_since, seen = 0, time.monotonic(), self._finished_seen
        n_configs = math.prod(int(c) for c in self.space.cardinalities)  # fewer where genes can be inactive
        try:
            while done < n_evals:
                raise_swallowed_interrupt()
                waiting = self._shared and self._others_running > 0  # other workers may free proposals
                if idle and self._shared:
                    time.sleep(min(0.05 * idle, 2.0))  # let other workers finish what they hold
                if self._shared:  # their evaluations count toward n_evals too
                    self._refresh_shared()
                    done = max(done, self._finished_seen)
                    if done >= n_evals:
                        break
                records = []
                for trial in self._ask(round_size, min(round_size, n_evals - done)):
                    record = self._evaluate(trial, evaluate, self._cheap)
                    records.append(record)
                    done += 1
                    bar.update(1)
                    if record.ok:
                        completed.append(record)
                        self._fix_reference_point(completed)
                    if show_progress and self._reference_point is not None:
                        feasible = self.feasible(completed)
                        bar.set_postfix(front=len(self.pareto_front(records=feasible)),
                                        hv=f"{self.hypervolume(records=feasible):.4g}")
                new.extend(records)
                searcher.tell(records)
                if records or self._finished_seen > seen:  # this process or another one made progress
                    idle, idle_since = 0, time.monotonic()
                else:
                    idle += 1
                seen = self._finished_seen
                stalled = idle > 200 if waiting else idle > 20 or time.monotonic() - idle_since > STALL_S
                stalled = stalled or len(self._known) >= n_configs  # every configuration held: stop at once
                if idle and stalled:
                    raise ElasticNASError(
                        f"the searcher proposed no new configuration in {idle} rounds after {done} evaluations: "
                        f"the space (10^{self.space.log10_size:.1f} configurations) is exhausted, every remaining "
                        "candidate violates a constraint on a cheap metric"
                        + (", or other workers hold every proposal" if waiting else "")
                    )
        except BaseException as stop:  # e.g. Ctrl-C or SIGTERM between a claim and its evaluation
            self._release_held(stop)
            raise
        finally:
            bar.close()
            self.save_diagnostics()
        return new

    def save_diagnostics(self) -> None:
        """Store the searcher's diagnostics (e.g. predictor quality) with the study, for the report."""
        diagnostics = self._searcher.diagnostics() if self._searcher is not None else {}
        if diagnostics:
            self.optuna_study.set_user_attr("searcher_diagnostics", diagnostics)


def _metadata(
    space: SearchSpace,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    reference_point: Sequence[float] | None,
    targets: Mapping[str, Sequence[str]] | None,
) -> dict[str, Any]:
    meta = {
        "version": _VERSION,
        "space": space.to_json(),
        "objectives": [[o.name, o.direction] for o in objectives],
        "constraints": [str(c) for c in constraints],
        "reference_point": None if reference_point is None else [float(x) for x in reference_point],
    }
    if targets is not None:  # absent otherwise: studies written before targets read the same
        meta["targets"] = {t: list(m) for t, m in targets.items()}
    return meta


def _checked_targets(targets: Mapping[str, Sequence[str]] | None, objectives: Sequence[Objective]) -> None:
    """Each target names objectives of its own (at least one, in no other target)."""
    if targets is None:
        return
    names = {o.name for o in objectives}
    owner: dict[str, str] = {}
    if not targets:
        raise ElasticNASError("targets is empty; give at least one target, or None for a study without targets")
    for target, metrics in targets.items():
        if not isinstance(target, str) or not target.strip() or isinstance(metrics, str) or not metrics:
            raise ElasticNASError(f"target {target!r} needs a name and a list of its own objectives, got {metrics!r}")
        for m in metrics:
            if m not in names:
                raise ElasticNASError(f"target {target!r}: {m!r} is not an objective ({', '.join(sorted(names))})")
            if m in owner:
                raise ElasticNASError(f"objective {m!r} belongs to targets {owner[m]!r} and {target!r}; give it one")
            owner[m] = target


def create_study(
    space: SearchSpace,
    objectives: Mapping[str, str] | Sequence[Objective],
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    constraints: Sequence[str | Constraint] | None = None,
    reference_point: Sequence[float] | None = None,
    load_if_exists: bool = True,
    targets: Mapping[str, Sequence[str]] | None = None,
) -> Study:
    """Create a study (or open the existing one of that name, if its definition matches).

    ``objectives`` maps metric names to ``"minimize"`` / ``"maximize"``;
    ``storage`` is an Optuna storage URL (``sqlite:///study.db``,
    ``postgresql://...``) or ``None`` for memory; ``constraints`` are strings
    such as ``"latency_ms<=20"``; ``reference_point`` (in the objectives'
    own units) fixes the hypervolume reference. ``targets`` (hardware targets: devices, batch sizes)
    map each target's name to its own objectives (its latency, energy, ...); the objectives in no
    target (accuracy, ...) are shared. One search then finds the front of every target: the
    expensive evaluations are shared, :meth:`Study.pareto_front` and :meth:`Study.hypervolume` take
    ``target=``, and searchers that know targets (the default) weigh each target's front alike.
    """
    objs = as_objectives(objectives)
    cons = as_constraints(constraints)
    _checked_targets(targets, objs)
    if study_name is not None and not study_name.strip():
        raise ElasticNASError("the study name is empty; give a name, or None for a generated one")
    if reference_point is not None and len(reference_point) != len(objs):
        raise ElasticNASError(f"reference_point needs {len(objs)} values, got {len(reference_point)}")
    store = _open_storage(storage)
    meta = _metadata(space, objs, cons, reference_point, targets)
    ostudy, created = _create_or_open(store, study_name, [o.direction for o in objs])
    if not created:
        if not load_if_exists:
            raise StorageError(f"study {study_name!r} already exists in this storage; use load_study")
        existing = _checked_metadata(ostudy, storage)
        if existing != json.loads(json.dumps(meta)):
            raise StorageError(
                f"study {ostudy.study_name!r} already exists with a different space, objectives, constraints or "
                "targets; choose another --study name or use load_study"
            )
    else:
        ostudy.set_user_attr(_ATTR, meta)
        with warnings.catch_warnings():  # experimental in some Optuna versions; it only names the axes
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ostudy.set_metric_names([o.name for o in objs])
    return Study(ostudy, space, objs, cons, _stored_reference_point(ostudy, meta), targets)


def _create_or_open(
    store: optuna.storages.BaseStorage, name: str | None, directions: list[Direction]
) -> tuple[optuna.Study, bool]:
    """The named study (a new one for ``None``) and whether this call created it. Of two processes
    creating one study at once, the one that loses the race opens the other's."""
    if name is not None and _study_exists(store, name):  # an existing one opens without a write
        return optuna.load_study(storage=store, study_name=name), False
    try:
        return optuna.create_study(storage=store, study_name=name, directions=directions), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(storage=store, study_name=name), False


def _study_exists(store: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        store.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _checked_metadata(ostudy: optuna.Study, storage: object) -> dict[str, Any]:
    """The elasticnas definition of an existing study; a study elasticnas did not create, or wrote with
    another format version, is refused (elasticnas writes only into studies it created)."""
    deadline = time.monotonic() + _CREATION_GRACE_S
    attrs = ostudy.user_attrs
    while not attrs and not ostudy.trials and time.monotonic() < deadline:
        time.sleep(0.05)  # an empty study without attributes: another process may be creating it now
        attrs = ostudy.user_attrs
    meta = attrs.get(_ATTR)
    where = storage if isinstance(storage, str) else "this storage"
    if not isinstance(meta, Mapping):
        raise StorageError(
            f"study {ostudy.study_name!r} in {where} was not created by elasticnas (no search space recorded); "
            "elasticnas reads and writes only its own studies: choose another study name"
        )
    if meta.get("version") != _VERSION:
        raise StorageError(
            f"study {ostudy.study_name!r} in {where} was written by an elasticnas with study format version "
            f"{meta.get('version')!r}; this one reads version {_VERSION}: use that elasticnas, or a new study name"
        )
    return dict(meta)


def _stored_reference_point(ostudy: optuna.Study, meta: Mapping[str, Any]) -> list[float] | None:
    """The reference point given at creation, else the one the study fixed from its first trials."""
    given = meta.get("reference_point")
    return given if given is not None else ostudy.user_attrs.get(_REFERENCE_ATTR)


def load_study(storage: str | optuna.storages.BaseStorage, study_name: str) -> Study:
    """Open a study written by :func:`create_study` (a SQLite file that does not exist is refused, not created)."""
    store = _open_storage(storage, create=False)
    try:
        ostudy = optuna.load_study(storage=store, study_name=study_name)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        raise StorageError(
            f"no study named {study_name!r} in {storage!r}; studies there: {', '.join(names) or 'none'}"
        ) from None
    meta = _checked_metadata(ostudy, storage)
    space = SearchSpace.from_json(meta["space"])
    objectives = [Objective(n, d) for n, d in meta["objectives"]]
    constraints = as_constraints(meta["constraints"])
    return Study(ostudy, space, objectives, constraints, _stored_reference_point(ostudy, meta), meta.get("targets"))


@dataclass(frozen=True)
class StudySummary:
    """One study of a storage: its trial counts by Optuna state, and its objectives if elasticnas created it."""

    name: str
    n_complete: int
    n_failed: int
    n_running: int
    objectives: tuple[str, ...]
    elasticnas: bool


def list_studies(storage: str | optuna.storages.BaseStorage) -> list[StudySummary]:
    """The studies in ``storage`` (a SQLite file that does not exist is refused, not created)."""
    store = _open_storage(storage, create=False)
    out = []
    for summary in optuna.get_all_study_summaries(store, include_best_trial=False):
        study_id = store.get_study_id_from_name(summary.study_name)
        meta = summary.user_attrs.get(_ATTR)
        mine = isinstance(meta, Mapping) and meta.get("version") == _VERSION
        out.append(StudySummary(
            name=summary.study_name,
            n_complete=store.get_n_trials(study_id, TrialState.COMPLETE),
            n_failed=store.get_n_trials(study_id, TrialState.FAIL),
            n_running=store.get_n_trials(study_id, TrialState.RUNNING),
            objectives=tuple(name for name, _ in meta["objectives"]) if mine else (),  # type: ignore[index]  # mine: a mapping
            elasticnas=mine,
        ))
    return out

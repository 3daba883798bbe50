from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from elasticnas.records import Constraint, Objective, TrialRecord, target_columns
from elasticnas.space import Config, SearchSpace, Seed, as_rng

CheapMetric = Callable[[Config], float]


class Searcher(ABC):
    """Proposes configurations (:meth:`ask`) and learns from finished trials (:meth:`tell`).

    The public methods do the bookkeeping every searcher shares: they never
    propose a configuration that was already evaluated or is pending, nor one
    that violates a constraint on a cheap metric. Subclasses implement
    :meth:`_propose` and may override :meth:`_observe`.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        *,
        constraints: Sequence[Constraint] = (),
        cheap_metrics: Mapping[str, CheapMetric] | None = None,
        seed: Seed = None,
        targets: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.space = space
        self.objectives = tuple(objectives)
        self.constraints = tuple(constraints)
        self.cheap_metrics = dict(cheap_metrics or {})
        # hardware targets (elasticnas.create_study): the objective columns of each target's front, shared ones
        # included; None without targets. Searchers that ignore it treat every objective as one problem.
        self.target_columns: tuple[tuple[int, ...], ...] | None = (
            None if targets is None else tuple(target_columns(self.objectives, targets).values())
        )
        self.rng = as_rng(seed)
        self.history: dict[str, TrialRecord] = {}
        self.pending: set[str] = set()
        self._cheap_cache: dict[str, dict[str, float]] = {}

    # -- public API ----------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Config]:
        """Up to ``n`` new, distinct, cheap-feasible configurations.

        Returns fewer (possibly none) only while a subclass waits for pending results.
        """
        out: list[Config] = []
        attempts = 0
        while len(out) < n and attempts < 50:
            attempts += 1
            proposals = self._propose(n - len(out))
            if not proposals:
                break
            self._accept_new(proposals, out, n)
        if not out and not self.pending:
            for _ in range(200):  # the subclass has nothing new: fall back to random sampling
                self._accept_new(self.space.sample_many(n, self.rng), out, n)
                if len(out) == n:
                    break
        return out

    def tell(self, records: Sequence[TrialRecord]) -> None:
        """Learn from finished trials (of this searcher's proposals or any other source)."""
        new = [r for r in records if r.config_id not in self.history]
        for r in new:
            self.history[r.config_id] = r
            self.pending.discard(r.config_id)
        if new:
            self._observe(new)

    def diagnostics(self) -> dict[str, Any]:
        """JSON-serialisable facts about the search so far (e.g. predictor quality); saved in the study."""
        return {}

    # -- helpers for subclasses -------------------------------------------------------
    def cheap(self, config: Config) -> dict[str, float]:
        """Cheap metrics of ``config`` (cached by config id)."""
        cid = self.space.config_id(config)
        if cid not in self._cheap_cache:
            self._cheap_cache[cid] = {name: float(fn(config)) for name, fn in self.cheap_metrics.items()}
        return self._cheap_cache[cid]

    def cheap_feasible(self, config: Config) -> bool:
        """False when a constraint on a cheap metric is violated."""
        checks = [c for c in self.constraints if c.metric in self.cheap_metrics]
        if not checks:
            return True
        values = self.cheap(config)
        return all(c.violation(values[c.metric]) == 0.0 for c in checks)

    def objective_values(self, record: TrialRecord) -> np.ndarray:
        """Minimisation vector of a record; failed records are +inf."""
        if not record.ok:
            return np.full(len(self.objectives), math.inf)
        return np.array([o.sign * float(record.metrics[o.name]) for o in self.objectives])

    def _accept_new(self, candidates: Sequence[Config], out: list[Config], n: int) -> None:
        """Move candidates that are new, not pending and cheap-feasible into ``out`` (up to ``n``)."""
        for cfg in candidates:
            if len(out) == n:
                return
            cfg = self.space.validate(cfg)
            cid = self.space.config_id(cfg)
            if cid in self.history or cid in self.pending or not self.cheap_feasible(cfg):
                continue
            self.pending.add(cid)
            out.append(cfg)

    # -- hooks ----------------------------------------------------------------------------
    @abstractmethod
    def _propose(self, n: int) -> list[Config]:
        """Return up to ``n`` candidate configurations (duplicates are filtered by :meth:`ask`)."""

    def _observe(self, records: Sequence[TrialRecord]) -> None:
        """Hook: react to newly finished trials (already added to :attr:`history`)."""


"""Predictor-guided search: batches chosen by the hypervolume improvement of predicted objectives over a large pool."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from threadpoolctl import ThreadpoolController

from elasticnas.errors import ElasticNASError
from elasticnas.pareto import default_reference_point, non_dominated_mask
from elasticnas.predictors import Predictor, create_predictor, cross_validate, kendall_tau
from elasticnas.records import TrialRecord
from elasticnas.searchers.base import Searcher
from elasticnas.space import Config

PredictorFactory = Callable[[int], Predictor]
PROBE_RESULTS = 5  # results of model-free evolution before its rate of entering the front is compared

_THREADPOOLS: list[ThreadpoolController] = []


def _one_blas_thread() -> Any:
    """A context that runs BLAS on one thread; the libraries are looked up once per process (a lookup costs
    milliseconds, as much as a whole round between fits)."""
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1)


def _staircase(front: np.ndarray, ref: np.ndarray, col: int) -> np.ndarray:
    """The non-dominated points of a 2-D ``front`` strictly better than ``ref``, sorted along column ``col``."""
    front = np.asarray(front, dtype=float).reshape(-1, 2)
    front = front[np.all(front < ref, axis=1)]
    if len(front):
        front = front[non_dominated_mask(front)]
        front = front[np.argsort(front[:, col])]
    return front


def hypervolume_improvement_2d(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exact hypervolume each of ``points`` (n, 2) would add to ``front`` (m, 2); minimisation, reference ``ref``.

    The region ``points[i]`` adds is its box up to ``ref`` minus the part the
    front already dominates, which is the staircase of the front's points
    clipped to that box; vectorised over all points at once.
    """
    points = np.asarray(points, dtype=float)
    box: np.ndarray = np.prod(np.clip(ref - points, 0.0, None), axis=1)
    front = _staircase(front, ref, 0)
    if len(front) == 0:
        return box
    X = np.maximum(front[None, :, 0], points[:, None, 0])  # (n, m), non-decreasing along m
    Y = np.maximum(front[None, :, 1], points[:, None, 1])
    X = np.minimum(X, ref[0])
    Y = np.minimum(Y, ref[1])
    X_next = np.concatenate([X[:, 1:], np.full((len(points), 1), ref[0])], axis=1)
    covered = np.sum((X_next - X) * (ref[1] - Y), axis=1)
    gain: np.ndarray = np.clip(box - covered, 0.0, None)
    return gain


def expected_hypervolume_improvement_2d(
    front: np.ndarray, exact: np.ndarray, mean: np.ndarray, std: np.ndarray, ref: np.ndarray, exact_col: int
) -> np.ndarray:
    """Expected hypervolume each point would add to ``front`` (m, 2), in closed form: column ``exact_col`` of
    the points is known (``exact``, (n,)), the other Gaussian (``mean``, ``std``); minimisation, reference ``ref``.

    For a known value ``x`` the region added above a level ``t`` of the Gaussian column has the width
    ``w(t) = max(0, min(g(t), ref) - x)``, ``g(t)`` the front's least ``x`` among points at or below ``t``: a
    step function of ``t``. The improvement at a value ``y`` is the integral of ``w`` from ``y`` to the
    reference, so its expectation is the sum over the steps of ``w`` times the integral of the normal CDF over
    the step, ``std * [psi(z)]`` with ``psi(z) = z Phi(z) + phi(z)``.
    """
    from scipy.stats import norm

    a, b = exact_col, 1 - exact_col
    front = _staircase(front, ref, b)
    levels = np.concatenate([[-np.inf], front[:, b], [ref[b]]])  # the steps of g along the Gaussian column
    g = np.concatenate([[ref[a]], np.minimum(front[:, a], ref[a])])
    width = np.clip(g[None, :] - np.asarray(exact, dtype=float)[:, None], 0.0, None)  # (n, steps)
    s = np.maximum(np.asarray(std, dtype=float), 1e-12)[:, None]
    z = (levels[None, :] - np.asarray(mean, dtype=float)[:, None]) / s
    finite = np.isfinite(z)
    zf = np.where(finite, z, 0.0)
    psi = np.where(finite, zf * norm.cdf(zf) + norm.pdf(zf), 0.0)
    gain: np.ndarray = np.sum(width * np.clip(s * np.diff(psi, axis=1), 0.0, None), axis=1)
    return gain


def hypervolume_improvement(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume improvement for any number of objectives (exact 2-D fast path, pymoo otherwise)."""
    if points.shape[1] == 2:
        return hypervolume_improvement_2d(front, points, ref)
    front = front[np.all(front < ref, axis=1)]
    hv = HV(ref_point=ref)
    base = float(hv(front)) if len(front) else 0.0
    out = np.zeros(len(points))
    for i, p in enumerate(points):
        if np.all(p < ref):
            out[i] = max(float(hv(np.vstack([front, p]))) - base, 0.0)
    return out


def _beta_greater(a: Sequence[int], b: Sequence[int]) -> float:
    """``P(p_a > p_b)`` for success rates with Beta(1 + successes, 1 + failures) posteriors from the 0/1
    outcomes ``a`` and ``b`` (exact: numerical integration on a grid of 2,001 points)."""
    from scipy.stats import beta

    x = np.linspace(0.0, 1.0, 2001)
    pdf_a = beta.pdf(x, 1 + sum(a), 1 + len(a) - sum(a))
    cdf_b = beta.cdf(x, 1 + sum(b), 1 + len(b) - sum(b))
    return float(np.clip(np.trapezoid(pdf_a * cdf_b, x), 0.0, 1.0))


def _open_plateaus(trials_on_plateau: np.ndarray, cap: float) -> np.ndarray:
    """Which candidates may take a pick, from the trials on each one's plateau: those on a plateau holding fewer
    than ``cap``; when every plateau is full (a cheap objective with few distinct values), those not on the
    fullest, so that no plateau runs away from the others."""
    open_: np.ndarray = trials_on_plateau < cap
    if not open_.any():
        open_ = trials_on_plateau < trials_on_plateau.max()
    return open_


def _crowding(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front (boundary points infinite)."""
    n, m = F.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (F[order[2:], j] - F[order[:-2], j]) / span
    return d


class PredictedHVISearcher(Searcher):
    """Proposes batches that maximise the hypervolume improvement of predicted objectives (``predicted_hvi``).

    A round makes ``max(n, round_size)`` proposals for ``ask(n)`` and serves
    them from a queue when ``n`` is smaller; with the default ``round_size = 1``
    every result is used before the next proposal. Rounds are of two kinds:

    * a **full round** fits one predictor (default ``gp_warped``: a Gaussian
      process, which measured best on OFA-MobileNetV3, HW-GPT-Bench and the
      built-in tiny_mbv3, fitted to Yeo-Johnson-warped targets when that ranks
      its trials better out of sample, with one length scale per choice of the
      space: the predictor is told which choice each feature column encodes,
      ``length_scale_per_choice=False`` tells it nothing; any registered predictor, ``auto``
      selection or ensemble can be passed) per *expensive* metric on the finished trials, hyperparameters
      included; cheap metrics are never predicted, they are computed exactly
      for every candidate. It then grows a candidate pool in ``pool_generations``
      generations of mutation and crossover starting from the evaluated front
      (plus some uniform samples), keeping the candidates that are
      optimistically non-dominated as next parents (a generation is drawn again,
      up to ``offspring_draws`` times, while fewer than half of its offspring are
      new configurations: in a space projected onto a table most small mutations
      land back on a known row); the pool restarts from the
      evaluated trials, so it stays near the data, where the predictor is
      trustworthy. Candidates violating a cheap constraint are dropped, those
      violating an expensive one even optimistically are dropped;
    * a **light round**, between full rounds, conditions the predictors that
      have an ``update`` method (the Gaussian process) on the new results at
      their fitted hyperparameters, re-predicts the ``shortlist_size`` best
      candidates kept from the last pool and ``light_generations`` small
      generations (``light_offspring`` each) grown from the evaluated front,
      and picks from those. Full rounds come every ``max(1, refit_fraction * n)``
      results (``n`` finished trials at the last one): one at every result early,
      rarer as each result moves the model less.

    Each round picks the batch greedily: each pick maximises the hypervolume its
    objective vector (predicted mean - ``beta`` std for every predicted
    objective, exact for cheap ones; ``beta = 1`` is optimistic) adds to the
    current front, and is then added to the front at its predicted mean (a
    "believer"), which spreads the batch along the front. Pending proposals
    enter the front the same way, so batches for parallel workers do not
    collide.

    With one predicted objective (``model_front=None``, the default, decides
    so; ``True`` / ``False`` force it) the front that candidates are compared
    with is the front *as the model predicts it*: each trial's predicted
    objective is the worse of its measurement and its leave-one-out prediction
    (for predictors that have one, the Gaussian process). The most accurate
    networks regress to the mean in every model, so their measurements lie
    beyond what any candidate's optimistic prediction reaches, and that end of
    the front would never be explored again; compared prediction with
    prediction, the shared bias cancels. With two or more predicted objectives
    the errors of both move each trial away from the front and the search
    re-proposes the neighbours of known trials, so it is off.

    With two objectives, one predicted and one cheap, and no hardware targets
    (``expected_improvement=None``, the default, decides so; ``True`` /
    ``False`` force it), each pick maximises instead the *expected*
    hypervolume improvement (closed form,
    :func:`expected_hypervolume_improvement_2d`) under a Gaussian set by the
    model's bias at the front, ``k``: the mean leave-one-out z-score of the
    evaluated front's trials, clipped to [0, 3] (the front rows not yet
    evaluated are those the model predicts too pessimistically; 0 for
    predictors without a leave-one-out form). The prediction's mean is moved
    ``k`` standard deviations towards better and its deviation shrunk by
    ``max(0, 1 - k / beta)``: a model without bias gets the expected
    improvement of its own prediction, one biased by ``beta`` the optimistic
    improvement above, a larger bias that of the point ``k`` deviations better.

    Two guards keep a wrong or misled model from capturing the search:

    * **trust**: every full round measures each expensive objective's predictor
      out of sample (Kendall tau of leave-one-out predictions, in closed form for
      the Gaussian process; 3-fold cross-validation otherwise). While the worst
      tau is low, model-free evolution (steady-state NSGA-II on the evaluated
      trials) competes for the proposals: each kind's results are scored by
      whether they entered the evaluated front, and evolution's share is the
      chance that it enters more often than the model's picks do (see
      :meth:`_evolution_share`). A model that ranks badly but still explores
      well keeps its proposals; the share falls back to 0 as tau recovers
      (``fallback=False`` turns this off);
    * **plateaus**: candidates whose cheap objectives tie (e.g. the many cells of
      the lowest cost) form a plateau; one holding ``max(3, plateau_share *
      trials)`` trials takes no more picks while other candidates remain (when
      every plateau is that full, the fullest takes none), since its optimistic
      improvement, multiplied by the widest strip of the front, would win again
      and again (``plateau_share=0`` turns this off).

    The first ``n_initial`` proposals (fewer when the study already holds
    trials: the search warm-starts from them) are spread along the first cheap
    objective when there is one, else uniform. Measurements behind the defaults:
    ``benchmarks/README.md``.
    """

    def __init__(
        self,
        *args: Any,
        predictor: str | PredictorFactory = "gp_warped",
        n_initial: int = 20,
        round_size: int = 1,
        beta: float = 1.0,
        pool_generations: int = 3,
        offspring_per_generation: int = 1000,
        offspring_draws: int = 8,
        random_fraction: float = 0.1,
        max_parents: int = 150,
        front_weight: float = 0.0,
        refit_fraction: float = 0.02,
        light_offspring: int = 300,
        light_generations: int = 2,
        shortlist_size: int = 400,
        tau_trust: float = 0.3,
        tau_distrust: float = 0.0,
        fallback: bool = True,
        evolution_population: int = 50,
        credit_window: int = 30,
        evolution_probe: float = 0.1,
        plateau_share: float = 0.1,
        model_front: bool | None = None,
        expected_improvement: bool | None = None,
        length_scale_per_choice: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        counts = {
            "round_size": round_size,
            "pool_generations": pool_generations,
            "offspring_per_generation": offspring_per_generation,
            "offspring_draws": offspring_draws,
            "max_parents": max_parents,
            "light_offspring": light_offspring,
            "shortlist_size": shortlist_size,
            "evolution_population": evolution_population,
            "credit_window": credit_window,
        }
        for name, value in counts.items():
            if value < 1:
                raise ElasticNASError(f"{name} must be >= 1, got {value}")
        if isinstance(predictor, str):
            name = predictor
            self._make_predictor: PredictorFactory = lambda seed: create_predictor(name, seed=seed)
            self.predictor_name = name
        else:
            self._make_predictor = predictor
            self.predictor_name = getattr(predictor, "__name__", type(predictor).__name__)
        self.n_initial = n_initial
        self.round_size = round_size
        self.beta = beta
        self.pool_generations = pool_generations
        self.offspring_per_generation = offspring_per_generation
        self.offspring_draws = offspring_draws
        self.random_fraction = random_fraction
        self.max_parents = max_parents
        self.front_weight = front_weight
        self.refit_fraction = refit_fraction
        self.light_offspring = light_offspring
        self.light_generations = light_generations
        self.shortlist_size = shortlist_size
        self.tau_trust = tau_trust
        self.tau_distrust = tau_distrust
        self.fallback = fallback
        self.evolution_population = evolution_population
        self.credit_window = credit_window
        self.evolution_probe = evolution_probe
        self.plateau_share = plateau_share
        self.model_front = model_front
        self._card = self.space.cardinalities
        gene_choice = np.repeat(np.arange(len(self.space.choices)), [c.length for c in self.space.choices.values()])
        self.length_scale_per_choice = length_scale_per_choice
        self._feature_groups = (  # the choice of each column of _features
            np.concatenate([np.repeat(gene_choice, self._card), gene_choice]) if length_scale_per_choice else None
        )
        self._queue: list[Config] = []
        self._configs: dict[bytes, Config] = {}  # canonical genes -> config
        self._genes_by_id: dict[str, np.ndarray] = {}  # config id of a finished trial -> canonical genes
        self._objectives_by_id: dict[str, tuple[np.ndarray, bool]] = {}  # -> (objective row, feasible)
        self._cheap_by_genes: dict[bytes, dict[str, float]] = {}
        self._proposed: dict[str, np.ndarray] = {}  # config id -> canonical genes of our proposals
        self._expensive = [o for o in self.objectives if o.name not in self.cheap_metrics]
        applies = len(self.objectives) == 2 and len(self._expensive) == 1 and self.target_columns is None
        if expected_improvement and not applies:
            raise ValueError(
                "expected_improvement=True needs two objectives, one predicted and one cheap (in cheap_metrics), "
                "and no hardware targets; leave it None to decide"
            )
        self.expected_improvement = applies if expected_improvement is None else expected_improvement
        # the column of the predicted objective when picks maximise the expected improvement
        self._expected_col = self.objectives.index(self._expensive[0]) if self.expected_improvement else None
        self._latest_front_bias = 0.0  # the model's bias at the front in the latest round (with expected_improvement)
        self._predictors: dict[str, Predictor] = {}
        self._rounds = 0
        self._full_rounds = 0
        self._fitted_on = 0  # finished trials the predictors' hyperparameters and the pool were built on
        self._shortlist = np.zeros((0, len(self._card)), dtype=np.int64)  # best pool candidates, kept between fits
        self._round_seconds: list[float] = []
        self._full_round_seconds: list[float] = []
        self._tau: dict[str, float] = {}  # out-of-sample Kendall tau of each predictor at its last fit
        self._tau_history: list[tuple[int, float]] = []  # (finished trials, worst tau)
        self._tau_n = 0
        self._evolution_credit = 0.0
        self._evolved = 0  # proposals made by model-free evolution
        self._kind: dict[str, str] = {}  # config id of a proposal after the initial design -> "model" / "evolution"
        # whether each kind's latest results entered the evaluated front (1) or not (0)
        self._entered: dict[str, deque[int]] = {k: deque(maxlen=credit_window) for k in ("model", "evolution")}
        self._plateau_blocked = 0  # picks that skipped a candidate on a full plateau

    # -- genes ---------------------------------------------------------------------------
    def _history_genes(self, done: Sequence[TrialRecord]) -> np.ndarray:
        """Canonical gene rows of finished trials (cached by config id; a study written before a space declared
        some genes inactive holds configurations with other values there)."""
        for r in done:
            if r.config_id not in self._genes_by_id:
                self._genes_by_id[r.config_id] = self.space.canonical_genes(self.space.to_genes(r.config))[0]
        return np.array([self._genes_by_id[r.config_id] for r in done])

    def _history_objectives(self, done: Sequence[TrialRecord]) -> tuple[np.ndarray, np.ndarray]:
        """Minimisation objective rows and feasibility of finished trials (cached by config id)."""
        for r in done:
            if r.config_id not in self._objectives_by_id:
                self._objectives_by_id[r.config_id] = (self.objective_values(r), r.violation(self.constraints) == 0.0)
        rows = [self._objectives_by_id[r.config_id] for r in done]
        F = np.array([f for f, _ in rows]).reshape(-1, len(self.objectives))
        return F, np.array([ok for _, ok in rows], dtype=bool)

    def _configs_of(self, G: np.ndarray) -> list[Config]:
        """Configurations of canonical gene rows (cached; new rows decoded in one batch)."""
        keys = [g.tobytes() for g in G]
        new = {k: i for i, k in enumerate(keys) if k not in self._configs}
        for k, cfg in zip(new, self.space.from_genes_many(G[list(new.values())]), strict=True):
            self._configs[k] = cfg
        return [self._configs[k] for k in keys]

    def _cheap_of(self, G: np.ndarray) -> list[dict[str, float]]:
        """Exact cheap metrics of canonical gene rows (cached)."""
        keys = [g.tobytes() for g in G]
        new = {k: i for i, k in enumerate(keys) if k not in self._cheap_by_genes}
        for k, cfg in zip(new, self._configs_of(G[list(new.values())]), strict=True):
            self._cheap_by_genes[k] = {n: float(fn(cfg)) for n, fn in self.cheap_metrics.items()}
        return [self._cheap_by_genes[k] for k in keys]

    def _features(self, G: np.ndarray) -> np.ndarray:
        """One-hot and ordinal columns of each gene (:attr:`_feature_groups` names each column's choice)."""
        return np.hstack([self.space.encode_genes(G, "onehot"), self.space.encode_genes(G, "ordinal")])

    def _new_predictor(self, seed: int) -> Predictor:
        """A predictor from the factory, told which choice each feature column encodes (with
        ``length_scale_per_choice``)."""
        predictor = self._make_predictor(seed)
        predictor.feature_groups = self._feature_groups
        return predictor

    def _mutate(self, P: np.ndarray, n: int) -> np.ndarray:
        """Change 1, 2, ... (geometric, mean 2) random positions of random parents to other values."""
        rng = self.rng
        C = P[rng.integers(len(P), size=n)].copy()
        mutable = np.flatnonzero(self._card > 1)
        if len(mutable) == 0:
            return C
        n_changes = np.minimum(rng.geometric(0.5, size=n), len(mutable))
        ranks = np.argsort(np.argsort(rng.random((n, len(mutable))), axis=1), axis=1)
        mask = np.zeros(C.shape, dtype=bool)
        mask[:, mutable] = ranks < n_changes[:, None]
        card = np.broadcast_to(self._card, C.shape)
        shift = (rng.random(C.shape) * (card - 1)).astype(np.int64) + 1
        C[mask] = (C[mask] + shift[mask]) % card[mask]
        return C

    def _crossover(self, P: np.ndarray, n: int) -> np.ndarray:
        """Uniform crossover of parents that are close in the parent order (neighbours along the front)."""
        i = self.rng.integers(len(P), size=n)
        j = np.clip(i + self.rng.integers(-3, 4, size=n), 0, len(P) - 1)
        a, b = P[i], P[j]
        return np.where(self.rng.random(a.shape) < 0.5, a, b)

    # -- ask ---------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Config]:
        if not self._queue:
            start = time.perf_counter()
            done = [r for r in self.history.values() if r.ok]
            if len(done) + len(self.pending) < self.n_initial or len(done) < 2:
                self._queue = self._initial_design(max(n, self.n_initial - len(done) - len(self.pending)))
            else:
                m = max(n, self.round_size)
                full = self._full_round_due(len(done))
                with _one_blas_thread():  # small matrices: BLAS threads only add contention
                    if full:
                        self._fit(done)
                    # a predictor that ranks poorly hands proposals to model-free evolution
                    self._evolution_credit += self._evolution_share() * m
                    n_evo = min(m, int(self._evolution_credit))
                    self._evolution_credit -= n_evo
                    self._queue = self._evolve(n_evo, done) if n_evo else []
                    n_evo = len(self._queue)  # evolution may find fewer new children
                    if n_evo < m:
                        if full or len(self._shortlist) == 0:
                            self._queue += self._pool_round(m - n_evo, done)
                        else:
                            self._queue += self._light_round(m - n_evo, done)
                    for i, config in enumerate(self._queue):
                        self._kind[self.space.config_id(config)] = "evolution" if i < n_evo else "model"
                self._rounds += 1
                self._evolved += n_evo
                if full:
                    self._full_round_seconds.append(time.perf_counter() - start)
            self._round_seconds.append(time.perf_counter() - start)
        out, self._queue = self._queue[:n], self._queue[n:]
        return out

    def _initial_design(self, n: int) -> list[Config]:
        G = self.space.canonical_genes(self.rng.integers(0, self._card, size=(max(20 * n, 200), len(self._card))))
        G = np.unique(G, axis=0)
        G = G[self.rng.permutation(len(G))]
        G = G[self._cheap_ok(G)]
        if len(G) == 0:
            return []
        cheap_objs = [o for o in self.objectives if o.name in self.cheap_metrics]
        if cheap_objs and len(G) > n:
            # spread along the first cheap objective: evenly spaced quantiles
            values = np.array([c[cheap_objs[0].name] for c in self._cheap_of(G)])
            order = np.argsort(values)
            G = G[order[np.unique(np.linspace(0, len(G) - 1, n).round().astype(int))]]
        return self._remember(G[:n])

    def _remember(self, G: np.ndarray) -> list[Config]:
        out = self._configs_of(G)
        for g, cfg in zip(G, out, strict=True):
            self._proposed[self.space.config_id(cfg)] = g
        return out

    def _full_round_due(self, n_done: int) -> bool:
        """Refit (hyperparameters and a fresh pool) every ``max(1, refit_fraction * n)`` finished trials,
        ``n`` those of the last fit: rarer as the data grows, while each result moves the model less."""
        if not self._predictors:
            return True
        return n_done - self._fitted_on >= max(1, math.ceil(self.refit_fraction * self._fitted_on))

    def _predicted_metrics(self) -> list[str]:
        expensive = {o.name for o in self._expensive}
        return [o.name for o in self._expensive] + [
            c.metric for c in self.constraints if c.metric not in self.cheap_metrics and c.metric not in expensive
        ]

    def _training_rows(self, done: Sequence[TrialRecord], name: str) -> tuple[list[int], np.ndarray]:
        rows = [i for i, r in enumerate(done) if name in r.metrics and math.isfinite(float(r.metrics[name]))]
        return rows, np.array([float(done[i].metrics[name]) for i in rows])

    def _state(self, done: Sequence[TrialRecord]) -> dict[str, Any]:
        """What every round needs: gene rows and objectives of the finished trials, the current front (feasible
        finished trials, as the model predicts them with ``model_front``, plus pending proposals at their predicted
        mean), the objective rows without a missing value (the reference point's basis), the configurations not to
        propose again and the parents (the evaluated front)."""
        G_hist = self._history_genes(done)
        F_all, feasible_mask = self._history_objectives(done)
        F_done = self._as_predicted(done, F_all)[feasible_mask].reshape(-1, len(self.objectives))
        pending = np.array([g for cid, g in self._proposed.items() if cid in self.pending], dtype=np.int64).reshape(
            -1, len(self._card)
        )
        F_front = np.vstack([F_done, self._objective_matrix(pending)[0]]) if len(pending) else F_done
        front_bias = self._front_bias(done, F_all, feasible_mask) if self._expected_col is not None else 0.0
        ok_rows = np.all(np.isfinite(F_all), axis=1) & feasible_mask
        cheap_cols = [j for j, o in enumerate(self.objectives) if o.name in self.cheap_metrics]
        V = np.vstack([F_all[:, cheap_cols], F_front[len(F_done) :, cheap_cols]])  # finished and pending
        return {
            "cheap_cols": cheap_cols,
            "cheap_values": V[np.all(np.isfinite(V), axis=1)],
            "G_hist": G_hist,
            "F_all": F_all,
            "ok_rows": ok_rows,
            "front": F_front,
            "F_finite": F_all[np.all(np.isfinite(F_all), axis=1)],
            "seen": {g.tobytes() for g in G_hist} | {g.tobytes() for g in pending},
            "parents": self._best(G_hist[ok_rows], F_all[ok_rows]),
            "front_bias": front_bias,
        }

    def _as_predicted(self, done: Sequence[TrialRecord], F_all: np.ndarray) -> np.ndarray:
        """The objective rows of ``done`` as the front that candidates are compared with: with ``model_front``
        (by default: one predicted objective), each predicted value the worse of its measurement and its
        leave-one-out prediction over the predictor's conditioned window (see the class docstring)."""
        predicted = [(j, o) for j, o in enumerate(self.objectives) if o.name in self._predictors]
        on = len(predicted) == 1 if self.model_front is None else self.model_front
        if not on:
            return F_all
        F = F_all.copy()
        for j, o in predicted:
            loo = self._loo_window(done, o.name)
            if loo is not None:
                window, pred = loo
                F[window, j] = np.maximum(F_all[window, j], o.sign * pred)
        return F

    def _loo_window(self, done: Sequence[TrialRecord], name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows of ``done``, leave-one-out predictions) over the conditioned window of the predictor of ``name``;
        None when it has no leave-one-out form."""
        loo = getattr(self._predictors.get(name), "loo_predictions", None)
        if loo is None:
            return None
        rows, y = self._training_rows(done, name)
        y_window, pred = loo()
        # the window is the last training rows: predictors with a leave-one-out form are updated on every result
        if len(pred) > len(rows) or not np.allclose(y_window, y[len(rows) - len(pred) :]):
            return None
        return np.array(rows[len(rows) - len(pred) :], dtype=np.int64), pred

    def _front_bias(self, done: Sequence[TrialRecord], F_all: np.ndarray, feasible: np.ndarray) -> float:
        """How many of its own leave-one-out standard deviations the model predicts the evaluated front worse
        than measured: the mean z-score over the front of the feasible trials in the predictor's window, clipped
        to [0, 3]; 0 for a predictor without a leave-one-out form (see the class docstring)."""
        assert self._expected_col is not None  # called only when picks maximise the expected improvement
        o = self.objectives[self._expected_col]
        loo = self._loo_window(done, o.name)
        loo_std = getattr(self._predictors.get(o.name), "loo_std", None)
        bias = 0.0
        if loo is not None and loo_std is not None:
            window, pred = loo
            ok = feasible[window] & np.all(np.isfinite(F_all[window]), axis=1)
            if ok.sum() >= 3:
                front = np.flatnonzero(ok)[non_dominated_mask(F_all[window[ok]])]
                z = (o.sign * pred[front] - F_all[window[front], self._expected_col]) / loo_std()[front]
                bias = float(np.clip(np.mean(z), 0.0, 3.0))
        self._latest_front_bias = bias
        return bias

    def _offspring(self, parents: np.ndarray, n_off: int, seen: set[bytes]) -> np.ndarray:
        """``n_off`` mutations, crossovers and uniform samples, canonical, new (``seen`` is updated) and
        feasible on the cheap constraints, drawn again (up to ``offspring_draws`` times in all) while fewer than
        half of ``n_off`` are new: where canonicalisation folds many configurations into one (a space projected
        onto a table of architectures), most small mutations of a parent fold back onto a known one."""
        drawn = [self._draw_offspring(parents, n_off, seen)]
        while sum(map(len, drawn)) < n_off / 2 and len(drawn) < self.offspring_draws:
            drawn.append(self._draw_offspring(parents, n_off, seen))
        return np.vstack(drawn)

    def _draw_offspring(self, parents: np.ndarray, n_off: int, seen: set[bytes]) -> np.ndarray:
        """One draw of :meth:`_offspring`: those of ``n_off`` mutations, crossovers and uniform samples that are
        new once canonical and feasible on the cheap constraints."""
        n_rand = int(self.random_fraction * n_off)
        n_cx = (n_off - n_rand) // 3
        C = np.vstack(
            [
                self._mutate(parents, n_off - n_rand - n_cx),
                self._mutate(self._crossover(parents, n_cx), n_cx),
                self.rng.integers(0, self._card, size=(n_rand, len(self._card))),
            ]
        )
        C = np.unique(self.space.canonical_genes(C), axis=0)
        new = []
        for g in C:
            key = g.tobytes()
            if key not in seen:
                seen.add(key)
                new.append(g)
        C = np.array(new, dtype=np.int64).reshape(-1, len(self._card))
        feasible: np.ndarray = C[self._cheap_ok(C)]
        return feasible

    def _fit(self, done: Sequence[TrialRecord]) -> None:
        """Fit the predictors (hyperparameters included) and measure how well they rank."""
        G_hist = self._history_genes(done)
        X_hist = self._features(G_hist)
        seed = int(self.rng.integers(2**31 - 1))
        weights = self._front_weights(done)
        self._predictors = {}
        for name in self._predicted_metrics():
            rows, y = self._training_rows(done, name)
            if len(rows) < 2:
                continue
            w = None if weights is None else weights[rows]
            self._predictors[name] = self._new_predictor(seed).fit(X_hist[rows], y, w)
        self._fitted_on = len(done)
        self._full_rounds += 1
        self._shortlist = self._shortlist[:0]
        self._measure_quality(done, X_hist, seed)

    def _grow(
        self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], generations: int, n_off: int, st: dict[str, Any]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Add ``generations`` of ``n_off`` offspring to the candidate ``parts`` ((genes, predicted mean, std) of
        optimistically feasible rows), the first bred from the evaluated front, each next one from the best of the
        evaluated trials and the candidates so far by their optimistic prediction."""
        G_ok, F_ok = st["G_hist"][st["ok_rows"]], st["F_all"][st["ok_rows"]]
        parents = st["parents"]
        for g in range(generations):
            C = self._offspring(parents, n_off, st["seen"])
            if len(C):
                mean, std = self._objective_matrix(C)
                ok = self._optimistically_feasible(C)
                if ok.any():
                    parts.append((C[ok], mean[ok], std[ok]))
            if parts and g + 1 < generations:
                G_pool = np.vstack([G_ok, *(G for G, _, _ in parts)])
                parents = self._best(G_pool, np.vstack([F_ok, *(m - self.beta * sd for _, m, sd in parts)]))
        return parts

    def _pool_round(self, n: int, done: Sequence[TrialRecord]) -> list[Config]:
        """Grow a fresh pool from the evaluated front in a few generations on the predictions, pick a batch."""
        st = self._state(done)
        parts = self._grow([], self.pool_generations, self.offspring_per_generation, st)
        if not parts:
            self._shortlist = self._shortlist[:0]
            return []
        return self._pick(parts, st, n)

    def _light_round(self, n: int, done: Sequence[TrialRecord]) -> list[Config]:
        """A round between fits: condition the predictors that can on the new results at their fitted
        hyperparameters, re-predict the shortlist kept from the last pool and a few fresh offspring of the
        evaluated front, pick a batch."""
        updatable = [name for name, p in self._predictors.items() if hasattr(p, "update")]
        if updatable:
            X_hist = self._features(self._history_genes(done))
            for name in updatable:
                rows, y = self._training_rows(done, name)
                self._predictors[name].update(X_hist[rows], y)  # type: ignore[attr-defined]  # checked just above
        st = self._state(done)
        keep = np.array([g.tobytes() not in st["seen"] for g in self._shortlist], dtype=bool)
        shortlist = self._shortlist[keep]
        st["seen"] |= {g.tobytes() for g in shortlist}
        parts = []
        if len(shortlist):
            mean, std = self._objective_matrix(shortlist)
            ok = self._optimistically_feasible(shortlist)
            if ok.any():
                parts.append((shortlist[ok], mean[ok], std[ok]))
        parts = self._grow(parts, self.light_generations, self.light_offspring, st)
        if not parts:
            return self._pool_round(n, done)
        return self._pick(parts, st, n)

    def _pick(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], st: dict[str, Any], n: int) -> list[Config]:
        """Select the batch from the candidate ``parts`` (see :meth:`_grow`), keep the best of the rest (first
        optimistic fronts) as the next shortlist.

        The reference point of a cheap objective lies beyond the candidates' values as well as the trials': from
        the trials alone, candidates past the worst value evaluated so far (the slowest networks, which hold the
        most accurate end of the front) would add no hypervolume and that end would never be explored.

        A plateau of the cheap objectives (candidates with equal values, e.g. the many cells of the lowest
        cost) holding ``max(3, plateau_share * trials)`` trials already takes no more picks while other
        candidates remain (when every plateau is that full, the fullest takes none): its optimistic improvement,
        multiplied by the widest strip of the front, would otherwise win again and again."""
        G, mean, std = (np.vstack(column) for column in zip(*parts, strict=True))
        opt = mean - self.beta * std
        plateaus = None
        if st["cheap_cols"] and self.plateau_share > 0:
            trials = st["cheap_values"]
            _, inverse = np.unique(np.vstack([trials, mean[:, st["cheap_cols"]]]), axis=0, return_inverse=True)
            inverse = inverse.ravel()
            counts = np.bincount(inverse[: len(trials)], minlength=int(inverse.max()) + 1).astype(float)
            plateaus = (inverse[len(trials) :], counts, max(3.0, self.plateau_share * (len(trials) + n)))
        ref = default_reference_point(st["F_finite"])
        if st["cheap_cols"]:  # cheap objectives: beyond the candidates' exact values too (see the docstring)
            cols = st["cheap_cols"]
            ref[cols] = np.maximum(ref[cols], default_reference_point(np.vstack([st["F_finite"], mean]))[cols])
        if self._expected_col is not None:  # the model's bias at the front corrected (see the class docstring)
            c, k = self._expected_col, st["front_bias"]
            mean, std = mean.copy(), std.copy()
            mean[:, c] -= k * std[:, c]
            std[:, c] *= max(1.0 - k / self.beta, 0.0) if self.beta > 0 else 0.0
        chosen = self._select(G, mean, opt, std, st["front"], ref, n, plateaus)
        rest = np.setdiff1d(np.arange(len(G)), chosen)
        if len(rest) > self.shortlist_size:
            fronts = self._fronts(opt[rest], self.shortlist_size)
            rest = rest[np.concatenate(fronts)[: self.shortlist_size]] if len(fronts) else rest[: self.shortlist_size]
        self._shortlist = G[rest]
        return self._remember(G[chosen])

    # -- trust and fallback ----------------------------------------------------------------
    def _measure_quality(self, done: Sequence[TrialRecord], X_hist: np.ndarray, seed: int) -> None:
        """Kendall tau of each expensive objective's predictor out of sample: leave-one-out in closed form for
        predictors that have it (the Gaussian process), else 3-fold cross-validation."""
        self._tau = {}
        for o in self._expensive:
            model = self._predictors.get(o.name)
            rows, y = self._training_rows(done, o.name)
            if model is None or len(rows) < 10:
                continue
            loo = getattr(model, "loo_predictions", None)
            if loo is not None:
                y_fit, pred = loo()
                self._tau[o.name] = kendall_tau(y_fit, pred)
            else:
                q = cross_validate(lambda: self._new_predictor(seed), X_hist[rows], y, n_folds=3, seed=seed)
                self._tau[o.name] = q.kendall_tau
        if self._tau:
            self._tau_n = len(done)
            self._tau_history.append((len(done), min(self._tau.values())))

    def _observe(self, records: Sequence[TrialRecord]) -> None:
        """Score each new result of a round's proposal by its kind (model or evolution): 1 when it entered the
        evaluated front (with hardware targets: any target's), else 0."""
        ours = [r for r in records if r.config_id in self._kind]
        if not ours:
            return
        done = [r for r in self.history.values() if r.ok]
        F, feasible = self._history_objectives(done)
        keep = feasible & np.all(np.isfinite(F), axis=1)
        F, ids = F[keep], np.array([r.config_id for r in done], dtype=object)[keep]
        column_sets = self.target_columns or (tuple(range(len(self.objectives))),)
        for r in ours:
            entered = False
            if r.ok and r.violation(self.constraints) == 0.0:
                f, others = self.objective_values(r), F[ids != r.config_id]  # a tie with another does not enter
                entered = any(not np.all(others[:, c] <= f[list(c)], axis=1).any() for c in column_sets)
            self._entered[self._kind[r.config_id]].append(int(entered))

    def _evolution_share(self) -> float:
        """The share of proposals handed to model-free evolution: the distrust in the predictors times the
        chance that evolution's proposals enter the front more often than the model's.

        Distrust comes from the worst predictor's out-of-sample tau over its ``n`` training points: 0 at or
        above ``max(tau_trust, 2.5 s)``, 1 at or below ``max(tau_distrust, s)``, linear in between, where
        ``s = sqrt(2 (2n + 5) / (9 n (n - 1)))`` is the standard deviation of tau without any association (a
        small sample needs a higher tau to be trusted). The chance is ``P(p_evolution > p_model)`` for the two
        kinds' rates of entering the front, each Beta(1 + entered, 1 + not) over its latest ``credit_window``
        results; until evolution has :data:`PROBE_RESULTS` results, the chance is ``evolution_probe``."""
        if not self._tau or not self.fallback:
            return 0.0
        n, tau = self._tau_n, min(self._tau.values())
        s = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
        hi, lo = max(self.tau_trust, 2.5 * s), max(self.tau_distrust, s)
        distrust = float(np.clip((hi - tau) / (hi - lo), 0.0, 1.0)) if hi > lo else float(tau < hi)
        if distrust == 0.0:
            return 0.0
        if len(self._entered["evolution"]) < PROBE_RESULTS:  # evolution has to show what it brings first
            return distrust * self.evolution_probe
        return distrust * _beta_greater(self._entered["evolution"], self._entered["model"])

    def _evolve(self, n: int, done: Sequence[TrialRecord]) -> list[Config]:
        """``n`` children of the evaluated trials without any model (steady-state NSGA-II): parents by binary
        tournament on non-dominated rank and crowding among the best ``evolution_population`` trials,
        uniform crossover, mutation of each gene with probability 1 / genes (at least one)."""
        G_hist = self._history_genes(done)
        F, feasible = self._history_objectives(done)
        ok = np.all(np.isfinite(F), axis=1) & feasible
        if ok.sum() < 2:
            return []
        G, F = G_hist[ok], F[ok]
        rank = np.zeros(len(F), dtype=np.int64)
        crowd = np.zeros(len(F))
        for k, idx in enumerate(self._fronts(F)):
            rank[idx] = k
            crowd[idx] = _crowding(F[idx])
        order = np.lexsort((-crowd, rank))[: self.evolution_population]
        G, rank, crowd = G[order], rank[order], crowd[order]
        seen = {g.tobytes() for g in G_hist} | {g.tobytes() for cid, g in self._proposed.items() if cid in self.pending}
        rng = self.rng
        mutable = np.flatnonzero(self._card > 1)
        children: list[np.ndarray] = []
        for _ in range(50 * n):
            if len(children) == n or len(mutable) == 0:
                break
            a, b = rng.integers(len(G), size=2), rng.integers(len(G), size=2)
            pa = a[0] if (rank[a[0]], -crowd[a[0]]) <= (rank[a[1]], -crowd[a[1]]) else a[1]
            pb = b[0] if (rank[b[0]], -crowd[b[0]]) <= (rank[b[1]], -crowd[b[1]]) else b[1]
            child = np.where(rng.random(len(self._card)) < 0.5, G[pa], G[pb]) if rng.random() < 0.9 else G[pa].copy()
            flip = (rng.random(len(self._card)) < 1.0 / len(mutable)) & (self._card > 1)
            if not flip.any():
                flip[rng.choice(mutable)] = True
            shift = (rng.random(len(self._card)) * (self._card - 1)).astype(np.int64) + 1
            child = np.where(flip, (child + shift) % np.maximum(self._card, 1), child)
            child = self.space.canonical_genes(child)
            key = child[0].tobytes()
            if key in seen or not self._cheap_ok(child)[0]:
                continue
            seen.add(key)
            children.append(child[0])
        if not children:
            return []
        return self._remember(np.array(children, dtype=np.int64))

    def _front_weights(self, done: Sequence[TrialRecord]) -> np.ndarray | None:
        """Training weights ``1 + front_weight * 2^-rank`` by non-dominated rank: the model fits the
        region near the front better, where ranking candidates matters."""
        if self.front_weight <= 0:
            return None
        F = np.array([self.objective_values(r) for r in done])
        F = np.where(np.isfinite(F), F, np.nanmax(np.where(np.isfinite(F), F, np.nan), axis=0) + 1.0)
        rank = np.zeros(len(F))
        for k, idx in enumerate(self._fronts(F)):
            rank[idx] = k
        return 1.0 + self.front_weight * 0.5**rank

    def _cheap_ok(self, G: np.ndarray) -> np.ndarray:
        """Which canonical gene rows satisfy every constraint on a cheap metric."""
        checks = [c for c in self.constraints if c.metric in self.cheap_metrics]
        if not checks:
            return np.ones(len(G), dtype=bool)
        values = self._cheap_of(G)
        return np.array([all(c.violation(v[c.metric]) == 0.0 for c in checks) for v in values], dtype=bool)

    def _optimistically_feasible(self, G: np.ndarray) -> np.ndarray:
        ok = np.ones(len(G), dtype=bool)
        checks = [c for c in self.constraints if c.metric in self._predictors]
        if not checks:
            return ok
        X = self._features(G)
        for c in checks:
            mean, std = self._predictors[c.metric].predict(X)
            best = mean - self.beta * std if c.op in ("<=", "<") else mean + self.beta * std
            ok &= np.array([c.violation(float(v)) == 0.0 for v in best])
        return ok

    def _objective_matrix(self, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predicted mean, standard deviation) minimisation matrices of gene rows (cheap objectives exact, with
        standard deviation 0)."""
        mean = np.zeros((len(G), len(self.objectives)))
        std = np.zeros_like(mean)
        X = self._features(G) if self._expensive else None
        cheap = self._cheap_of(G) if any(o.name in self.cheap_metrics for o in self.objectives) else []
        for j, o in enumerate(self.objectives):
            if o.name in self.cheap_metrics:
                v = np.array([c[o.name] for c in cheap])
                mean[:, j] = o.sign * v
            elif o.name in self._predictors:
                assert X is not None  # only expensive objectives have predictors
                m, s = self._predictors[o.name].predict(X)
                mean[:, j] = o.sign * m
                std[:, j] = s
        return mean, std

    def _fronts(self, F: np.ndarray, n_stop: int | None = None) -> list[np.ndarray]:
        """Row indices of ``F`` by non-dominated front (sorting stops once ``n_stop`` rows are ranked). With
        hardware targets a row's front is its best over the targets' fronts (each on its own columns)."""
        if self.target_columns is None:
            fronts: list[np.ndarray] = NonDominatedSorting().do(F, n_stop_if_ranked=n_stop)
            return fronts
        rank = np.full(len(F), np.inf)
        for cols in self.target_columns:
            for k, idx in enumerate(NonDominatedSorting().do(F[:, cols], n_stop_if_ranked=n_stop)):
                rank[idx] = np.minimum(rank[idx], k)
        levels = np.unique(rank[np.isfinite(rank)])
        return [np.flatnonzero(rank == k) for k in levels]

    def _hvi(self, front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Hypervolume improvement of ``points``; with hardware targets the sum over the targets of each one's
        improvement on its own columns, as a share of its box between the ideal point and ``ref`` (so every
        target's front weighs alike, whatever its units)."""
        if self.target_columns is None:
            return hypervolume_improvement(front, points, ref)
        total = np.zeros(len(points))
        for cols in self.target_columns:
            c = list(cols)
            ideal = np.vstack([front[:, c], points[:, c]]).min(axis=0)
            box = float(np.prod(np.maximum(ref[c] - ideal, 1e-12)))
            total += hypervolume_improvement(front[:, c], points[:, c], ref[c]) / box
        return total

    def _gain(
        self, front: np.ndarray, mean: np.ndarray, opt: np.ndarray, std: np.ndarray, ref: np.ndarray
    ) -> np.ndarray:
        """What a pick maximises: the expected hypervolume improvement with ``expected_improvement``, else the
        optimistic one."""
        if self._expected_col is None:
            return self._hvi(front, opt, ref)
        c, exact = self._expected_col, 1 - self._expected_col
        return expected_hypervolume_improvement_2d(front, mean[:, exact], mean[:, c], std[:, c], ref, exact)

    def _best(self, G: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Up to ``max_parents`` rows on the first non-dominated fronts, ordered along the first objective."""
        if len(G) == 0:
            return G
        fronts = self._fronts(F, self.max_parents)
        idx = np.concatenate(fronts)[: self.max_parents] if len(fronts) else np.arange(min(len(G), self.max_parents))
        idx = idx[np.argsort(F[idx, 0], kind="stable")]
        return G[idx]

    def _select(
        self,
        G: np.ndarray,
        mean: np.ndarray,
        opt: np.ndarray,
        std: np.ndarray,
        front: np.ndarray,
        ref: np.ndarray,
        n: int,
        plateaus: tuple[np.ndarray, np.ndarray, float] | None = None,
    ) -> np.ndarray:
        """Greedy batch (row indices of ``G``): maximise the optimistic (or expected) hypervolume improvement,
        believe each pick at its mean."""
        chosen: list[int] = []
        available = np.ones(len(G), dtype=bool)
        front = front[np.all(np.isfinite(front), axis=1)]
        span = np.maximum(np.ptp(np.vstack([front, opt]), axis=0), 1e-12) if len(front) else np.ones(opt.shape[1])
        # restrict the exact computation to promising candidates: the first optimistic fronts
        cand = np.flatnonzero(available)
        if plateaus is not None:  # (plateau of each row, trials per plateau, cap): rank the open plateaus' rows
            open_rows = _open_plateaus(plateaus[1][plateaus[0]], plateaus[2])
            if open_rows.any() and not open_rows.all():
                cand = np.flatnonzero(open_rows)
        order = self._fronts(opt[cand], max(8 * n, 200))
        cand = cand[np.concatenate(order)[: max(8 * n, 200)]] if len(order) else cand
        for _ in range(min(n, len(cand))):
            idx = cand[available[cand]]
            if len(idx) == 0:
                break
            if plateaus is not None:  # a plateau filled by this batch's picks
                open_ = _open_plateaus(plateaus[1][plateaus[0][idx]], plateaus[2])
                if open_.any() and not open_.all():
                    self._plateau_blocked += 1
                    idx = idx[open_]
            gain = self._gain(front, mean[idx], opt[idx], std[idx], ref)
            if np.max(gain) > 0:
                best = idx[int(np.argmax(gain))]
            else:
                # nothing improves even optimistically: the least dominated candidate
                diff = (opt[idx][:, None, :] - front[None, :, :]) / span
                depth = np.max(np.min(diff, axis=2), axis=1) if len(front) else np.zeros(len(idx))
                best = idx[int(np.argmin(depth))]
            chosen.append(best)
            available[best] = False
            if plateaus is not None:
                plateaus[1][plateaus[0][best]] += 1
            front = np.vstack([front, mean[best]])
        return np.array(chosen, dtype=np.int64)

    # -- diagnostics ---------------------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        done = [r for r in self.history.values() if r.ok]
        quality: dict[str, dict[str, float | int]] = {}
        if len(done) >= 10:
            X = self._features(self._history_genes(done))
            for name in self._predictors:
                rows = [i for i, r in enumerate(done) if name in r.metrics]
                y = np.array([float(done[i].metrics[name]) for i in rows])
                q = cross_validate(lambda: self._new_predictor(0), X[rows], y, n_folds=5, seed=0)
                quality[name] = q.to_dict()
        times = self._round_seconds
        return {
            "searcher": "predicted_hvi",
            "predictor": self.predictor_name,
            "predictor_quality": quality,
            "rounds": self._rounds,
            "full_rounds": self._full_rounds,
            "round_seconds_mean": float(np.mean(times)) if times else 0.0,
            "round_seconds_median": float(np.median(times)) if times else 0.0,
            "round_seconds_max": float(np.max(times)) if times else 0.0,
            "search_tau": [{"n": n, "kendall_tau": t} for n, t in self._tau_history],
            "evolution_share": self._evolved / max(1, len(self._proposed)),
            "front_entry_rate": {k: float(np.mean(v)) if v else None for k, v in self._entered.items()},
            "plateau_blocked_picks": self._plateau_blocked,
            "acquisition": "expected" if self._expected_col is not None else "optimistic",
            "front_bias": self._latest_front_bias,
        }

"""A Gaussian process in NumPy: the model of scikit-learn's ``ConstantKernel * RBF + WhiteKernel`` regressor,
computed with matrix products, with a cheap update at fixed hyperparameters for searches that refit often,
optionally with one length scale per group of features and fitted to warped targets."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import cho_solve, cholesky, lapack, solve_triangular
from scipy.optimize import minimize

from elasticnas.errors import ElasticNASError
from elasticnas.predictors._quality import kendall_tau
from elasticnas.predictors.base import Predictor

# log bounds of (constant, length scale, noise), as scikit-learn's kernel was built before
_BOUNDS = np.log(np.array([[1e-2, 1e2], [1e-1, 1e3], [1e-6, 1.0]]))
_LINEAR_BOUNDS = np.log(np.array([[1e-4, 1e2]]))  # of the linear term's weight (``linear=True``)
START_SCALES = (0.125, 0.25, 0.5, 1.0, 2.0)  # start length scales, in units of the median training distance
LIKELIHOOD_MARGIN = 1.0  # nats by which a grid start must beat the first optimum to be optimised too
_JITTER = 1e-10  # scikit-learn's ``alpha``: added to the training kernel's diagonal


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``A`` and ``B`` by one matrix product."""
    D: np.ndarray = (A * A).sum(axis=1)[:, None] + (B * B).sum(axis=1)[None, :] - 2.0 * (A @ B.T)
    np.maximum(D, 0.0, out=D)
    return D


def _inverse_from_cholesky(L: np.ndarray) -> np.ndarray:
    """K^-1 from the lower Cholesky factor of K (LAPACK ``potri``), both triangles filled."""
    inv, info = lapack.dpotri(L, lower=True)
    if info != 0:
        return cho_solve((L, True), np.eye(len(L)))  # type: ignore[no-any-return]  # scipy is untyped
    inv = np.tril(inv)
    out: np.ndarray = inv + np.tril(inv, -1).T
    return out


class _TargetWarp:
    """A Yeo-Johnson transform of the targets (scikit-learn's ``PowerTransformer``, lambda by maximum likelihood)
    and its inverse, which clips its argument to the image of the targets' range widened by up to twice its span on
    either side, as far as the inverse is defined there (:attr:`usable`: defined on the targets' range at least)."""

    def __init__(self, y: np.ndarray) -> None:
        from sklearn.preprocessing import PowerTransformer

        self._transform = PowerTransformer().fit(y[:, None])
        span = float(y.max() - y.min())
        self.usable = False
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns of the NaN that an undefined inverse gives
            for widening in (2.0, 1.0, 0.5, 0.0):
                self._low, self._high = self.forward(np.array([y.min() - widening * span, y.max() + widening * span]))
                bounds = self._transform.inverse_transform(np.array([[self._low], [self._high]]))
                if np.all(np.isfinite([self._low, self._high])) and np.all(np.isfinite(bounds)):
                    self.usable = bool(np.all(np.isfinite(self.forward(y))))
                    break

    def forward(self, y: np.ndarray) -> np.ndarray:
        z: np.ndarray = self._transform.transform(np.asarray(y, dtype=float)[:, None]).ravel()
        return z

    def inverse(self, z: np.ndarray) -> np.ndarray:
        y: np.ndarray = self._transform.inverse_transform(np.clip(z, self._low, self._high)[:, None]).ravel()
        return y

    def inverse_std(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """The deviation of warped Gaussians in target units: half the width of their mapped +-1 std interval."""
        width: np.ndarray = self.inverse(mean + std) - self.inverse(mean - std)
        return np.maximum(width / 2, 0.0)


class GPPredictor(Predictor):
    """Gaussian process (constant x RBF + white noise), hyperparameters by marginal likelihood.

    The model and the optimisation are scikit-learn's ``GaussianProcessRegressor`` with the kernel
    ``ConstantKernel(1, (1e-2, 1e2)) * RBF(sqrt(d), (1e-1, 1e3)) + WhiteKernel(1e-2, (1e-6, 1))``
    (L-BFGS-B on the log hyperparameters from that start), written with matrix products: the distances are
    computed once per fit instead of once per likelihood evaluation. The likelihood has local optima, so a grid
    of other starts is evaluated too, and the best of them is optimised as well when it beats the first optimum
    by more than :data:`LIKELIHOOD_MARGIN` (the fit then differs from scikit-learn's, with a higher likelihood).

    Exact GPs cost O(n^3): beyond ``max_train`` points the fit uses the last
    ``max_train`` rows (a search passes its trials in order, so the most recent
    ones, nearest the front it is working on). Sample weights are ignored.

    :meth:`update` conditions the fitted process on new data at the hyperparameters of the last
    :meth:`fit` (no optimisation; new rows by a block update): what a searcher calls between fits.

    With ``linear=True`` (registered as ``gp_linear``) the kernel gains a linear term ``b * x.x' / d``
    (Bayesian linear regression on the features, ``b`` fitted with the others): where the RBF alone finds
    no length scale that explains the data (it then falls back to independent points and predicts the
    mean), the main effects of the choices still rank configurations.

    With :attr:`~elasticnas.predictors.Predictor.feature_groups` set (a searcher sets one group per choice of its
    space), each group of feature columns gets its own length scale: the squared distance is the sum of the
    groups' squared distances, each divided by its length scale squared. The group length scales are optimised
    from the isotropic optimum (all equal), so the fit's likelihood is at least the isotropic fit's.

    With ``warp=True`` (registered as ``gp_warped``) every :meth:`fit` fits a second process to the
    Yeo-Johnson-warped targets (lambda by maximum likelihood, as HEBO warps its outputs) and keeps whichever of the
    two ranks its window better out of sample (leave-one-out Kendall tau; the plain one on ties). A warped
    process's predictions are mapped back to target units: the mean through the inverse warp, the deviation as
    half the width of the mapped +-1 deviation interval; :meth:`update` keeps the warp of the last fit.
    """

    has_uncertainty = True

    def __init__(self, seed: int | None = None, max_train: int = 400, linear: bool = False, warp: bool = False) -> None:
        super().__init__(seed)
        self.max_train = max_train
        self.linear = linear
        self.warp = warp
        self._warp: _TargetWarp | None = None  # the warp of the fitted targets (``warp=True`` and it ranked better)
        # log (constant, length scale, noise[, linear weight][, the length scales of feature groups 1, 2, ...]):
        # the length scale at index 1 is feature group 0's (every feature's without groups)
        self.theta = np.zeros(4 if linear else 3)
        self._n_base = len(self.theta)
        self._column_group: np.ndarray | None = None  # group index of each feature column (feature groups set)
        self.n_likelihood_evals = 0
        self._n_total = 0  # rows of the data last fitted or updated on (before the window)
        self._X = np.zeros((0, 0))  # the conditioned window
        self._y = np.zeros(0)  # its standardised targets
        self._L = np.zeros((0, 0))  # lower Cholesky factor of its kernel matrix
        self._alpha = np.zeros(0)  # K^-1 y
        self._k_inv_diag: np.ndarray | None = None  # diag(K^-1), computed on demand, extended by _append

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> GPPredictor:
        self._warp = None
        super().fit(X, y, sample_weight)
        y = np.asarray(y, dtype=float).ravel()
        if not self.warp or len(np.unique(y)) < 3:
            return self
        plain_tau = self._loo_tau()
        plain_state = dict(self.__dict__)  # every fit replaces the attributes it sets: a shallow copy restores it
        warp = _TargetWarp(y)
        if not warp.usable:
            return self
        super().fit(X, warp.forward(y), sample_weight)
        if self._loo_tau() > plain_tau:
            self._warp = warp
        else:
            self.__dict__.update(plain_state)
        return self

    def _loo_tau(self) -> float:
        """Kendall tau of the leave-one-out predictions over the conditioned window (warp-invariant)."""
        y, loo = self._loo_targets()
        return kendall_tau(y, loo)

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        self._n_total = len(y)
        X, y = self._window(X, y)
        self._column_group = self._grouping(X.shape[1])
        D = _sq_dists(X, X)
        P = self._products(X, X) if self.linear else None
        bounds = np.vstack([_BOUNDS, _LINEAR_BOUNDS]) if self.linear else _BOUNDS
        self.n_likelihood_evals = 0

        def objective(theta: np.ndarray, D: np.ndarray = D) -> tuple[float, np.ndarray]:
            self.n_likelihood_evals += 1
            lml, grad = self._log_marginal_likelihood(theta, D, y, P)
            return -lml, -grad

        starts = self._starts(X.shape[1], D, bounds)
        res = minimize(objective, starts[0], method="L-BFGS-B", jac=True, bounds=bounds)
        # the likelihood has local optima: restart from the best of a grid of starts when it beats the first
        # optimum by more than LIKELIHOOD_MARGIN nats (equal optima keep scikit-learn's)
        values = [-self._log_marginal_likelihood(theta, D, y, P, gradient=False)[0] for theta in starts[1:]]
        if values and min(values) < res.fun - LIKELIHOOD_MARGIN:
            other = minimize(objective, starts[1 + int(np.argmin(values))], method="L-BFGS-B", jac=True, bounds=bounds)
            res = other if other.fun < res.fun else res
        theta = np.asarray(res.x, dtype=float)
        if self._column_group is not None:
            D = self._distances(X)
            n_groups = len(D)
            start = np.concatenate([theta, np.full(n_groups - 1, theta[1])])
            bounds = np.vstack([bounds, np.repeat(_BOUNDS[1:2], n_groups - 1, axis=0)])
            grouped = minimize(objective, start, args=(D,), method="L-BFGS-B", jac=True, bounds=bounds)
            theta = np.asarray(grouped.x if grouped.fun <= res.fun else start, dtype=float)
        self._condition(theta, X, y, D)

    def _grouping(self, d: int) -> np.ndarray | None:
        """Group index (0, 1, ...) of each of ``d`` feature columns, or None for one length scale."""
        if self.feature_groups is None:
            return None
        groups = np.asarray(self.feature_groups).ravel()
        if len(groups) != d:
            raise ElasticNASError(f"feature_groups names a group for {len(groups)} columns, the features have {d}")
        index: np.ndarray = np.unique(groups, return_inverse=True)[1].ravel()
        return index if index.max() > 0 else None

    def _distances(self, X: np.ndarray) -> np.ndarray:
        """Squared distances between the rows of ``X``: (n, n), or (groups, n, n) one matrix per feature group."""
        if self._column_group is None:
            return _sq_dists(X, X)
        return np.stack([_sq_dists(X[:, cols], X[:, cols]) for cols in self._group_columns()])

    def _group_columns(self) -> list[np.ndarray]:
        assert self._column_group is not None
        return [np.flatnonzero(self._column_group == g) for g in range(int(self._column_group.max()) + 1)]

    def _length_scales(self, theta: np.ndarray) -> np.ndarray:
        """The length scale of each feature group (one without groups) at log hyperparameters ``theta``."""
        ells: np.ndarray = np.exp(np.concatenate([theta[1:2], theta[self._n_base :]]))
        return ells

    def _exponent(self, theta: np.ndarray, D: np.ndarray) -> np.ndarray:
        """The RBF's exponent from squared distances ``D`` as :meth:`_distances` gives them."""
        ells = self._length_scales(theta)
        exponent: np.ndarray = D * (-0.5 / ells[0] ** 2) if D.ndim == 2 else np.tensordot(-0.5 / ells**2, D, axes=1)
        return exponent

    def _exponent_between(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """The RBF's exponent between the rows of ``A`` and ``B`` at the fitted length scales."""
        ells = self._length_scales(self.theta)
        if self._column_group is None:
            exponent: np.ndarray = _sq_dists(A, B) * (-0.5 / ells[0] ** 2)
        else:
            scales = 1.0 / ells[self._column_group]  # of each column
            exponent = _sq_dists(A * scales, B * scales) * -0.5
        return exponent

    def _starts(self, d: int, D: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
        """Log hyperparameters to start the optimisation from: scikit-learn's start (length scale sqrt(d), noise
        0.01), then a grid of length scales around the median distance between training points, each with little
        and much noise. From scikit-learn's start alone the optimiser can slide to the shortest length scale
        (every point independent, predictions the mean) past a far better optimum."""
        linear = [0.1] if self.linear else []
        median = float(np.sqrt(max(np.median(D[np.triu_indices_from(D, k=1)]), 1e-12))) if len(D) > 1 else 1.0
        grid = [[1.0, np.sqrt(d), 1e-2, *linear]] + [
            [1.0, median * f, noise, *linear] for f in START_SCALES for noise in (1e-3, 0.1)
        ]
        return [np.clip(np.log(np.array(g)), bounds[:, 0], bounds[:, 1]) for g in grid]

    def update(self, X: np.ndarray, y: np.ndarray) -> GPPredictor:
        """Condition on ``(X, y)``, all the training data in order, at the hyperparameters and target scaling
        of the last :meth:`fit`.

        When ``X`` extends the data of the last fit or update by new rows at its end (a search's trials),
        the new rows are added to the window by extending the Cholesky factor (O(n^2) per row instead of
        a new factorisation), up to ``max_train / 4`` rows beyond ``max_train``; otherwise,
        and then, it conditions on the last ``max_train`` rows from scratch.
        """
        if not self._fitted:
            return self.fit(X, y)
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        y = ((y if self._warp is None else self._warp.forward(y)) - self._mu) / self._sigma
        k = len(y) - self._n_total
        extends = 0 <= k and len(self._X) + k <= self.max_train + self.max_train // 4
        if extends and not np.array_equal(X[self._n_total - 1], self._X[-1]):
            extends = False  # other data than the last fit's
        if extends and k > 0:
            extends = self._append(X[self._n_total :], np.concatenate([self._y, y[self._n_total :]]))
        if not extends:
            Xw, yw = self._window(X, y)
            self._condition(self.theta, Xw, yw, self._distances(Xw))
        self._n_total = len(y)
        return self

    def _append(self, X_new: np.ndarray, y: np.ndarray) -> bool:
        """Add rows to the conditioned window by extending the Cholesky factor of the kernel matrix; False
        (nothing changed) when the new block is not numerically positive definite."""
        c, noise = np.exp(self.theta[[0, 2]])
        B = c * np.exp(self._exponent_between(self._X, X_new))  # (n, k)
        C = c * np.exp(self._exponent_between(X_new, X_new))
        if self.linear:
            B += self._linear_weight() * self._products(self._X, X_new)
            C += self._linear_weight() * self._products(X_new, X_new)
        C[np.diag_indices_from(C)] += noise + _JITTER
        W = solve_triangular(self._L, B, lower=True, check_finite=False)
        try:
            L22 = cholesky(C - W.T @ W, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return False
        n, k = len(self._X), len(X_new)
        L = np.zeros((n + k, n + k))
        L[:n, :n] = self._L
        L[n:, :n] = W.T
        L[n:, n:] = L22
        if self._k_inv_diag is not None:  # the inverse factor's new rows: [-L22^-1 W^T L^-1, L22^-1]
            L22_inv = solve_triangular(L22, np.eye(k), lower=True, check_finite=False)
            below = L22_inv @ solve_triangular(self._L, W, lower=True, trans="T", check_finite=False).T
            self._k_inv_diag = np.concatenate(
                [self._k_inv_diag + np.einsum("ij,ij->j", below, below), np.einsum("ij,ij->j", L22_inv, L22_inv)]
            )
        self._L = L
        self._X = np.vstack([self._X, X_new])
        self._y = y
        self._alpha = cho_solve((L, True), y, check_finite=False)
        return True

    def _window(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(y) > self.max_train:
            return X[-self.max_train :], y[-self.max_train :]
        return X, y

    @staticmethod
    def _products(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``A B^T / d``: the linear term's kernel at weight 1."""
        P: np.ndarray = A @ B.T / A.shape[1]
        return P

    def _linear_weight(self) -> float:
        """The fitted weight of the linear term."""
        return float(np.exp(self.theta[3]))

    def _kernel(self, theta: np.ndarray, D: np.ndarray, P: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        c, noise = np.exp(theta[[0, 2]])
        E = np.exp(self._exponent(theta, D))
        K = c * E
        if P is not None:
            K = K + np.exp(theta[3]) * P
        K[np.diag_indices_from(K)] += noise + _JITTER
        return K, E

    def _log_marginal_likelihood(
        self, theta: np.ndarray, D: np.ndarray, y: np.ndarray, P: np.ndarray | None = None, gradient: bool = True
    ) -> tuple[float, np.ndarray]:
        """The log marginal likelihood at log hyperparameters ``theta`` and its gradient (zeros when not
        ``gradient``: the gradient costs the kernel's inverse); ``D`` as :meth:`_distances` gives it, the length
        scales in ``theta`` one per matrix of ``D``."""
        c, noise = np.exp(theta[[0, 2]])
        K, E = self._kernel(theta, D, P)
        try:
            L = cholesky(K, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return -np.inf, np.zeros(len(theta))
        alpha = cho_solve((L, True), y, check_finite=False)
        n = len(y)
        lml = -0.5 * float(y @ alpha) - float(np.log(np.diag(L)).sum()) - 0.5 * n * np.log(2 * np.pi)
        if not gradient:
            return lml, np.zeros(len(theta))
        # d lml / d theta_k = 0.5 tr((alpha alpha^T - K^-1) dK/dtheta_k)
        inner = np.outer(alpha, alpha) - _inverse_from_cholesky(L)
        cE = c * E
        weighted = inner * cE
        per_length = [
            float(np.sum(weighted * Dg)) / ell**2
            for Dg, ell in zip(D.reshape(-1, *D.shape[-2:]), self._length_scales(theta), strict=True)
        ]
        grad = 0.5 * np.array(
            [float(np.sum(weighted)), per_length[0], noise * float(np.trace(inner))]
            + ([float(np.exp(theta[3])) * float(np.sum(inner * P))] if P is not None else [])
            + per_length[1:]
        )
        return lml, grad

    def _condition(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, D: np.ndarray) -> None:
        K, _ = self._kernel(theta, D, self._products(X, X) if self.linear else None)
        L = cholesky(K, lower=True, check_finite=False)
        self.theta = theta
        self._X = X
        self._y = y
        self._L = L
        self._alpha = cho_solve((L, True), y, check_finite=False)
        self._k_inv_diag = None

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = super().predict(X)
        if self._warp is None:
            return mean, std
        return self._warp.inverse(mean), self._warp.inverse_std(mean, std)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, noise = np.exp(self.theta[[0, 2]])
        K_trans = c * np.exp(self._exponent_between(X, self._X))
        prior = c + noise
        if self.linear:
            K_trans += self._linear_weight() * self._products(X, self._X)
            prior = prior + self._linear_weight() * (X * X).sum(axis=1) / X.shape[1]
        mean = K_trans @ self._alpha
        V = solve_triangular(self._L, K_trans.T, lower=True, check_finite=False)
        var = prior - np.einsum("ij,ij->j", V, V)
        return mean, np.sqrt(np.maximum(var, 0.0))

    def loo_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """(targets, leave-one-out predicted means) of the conditioned window, in target units: the closed form
        ``y_i - [K^-1 y]_i / [K^-1]_ii``, at the cost of one triangular inverse after a fit (rows added by
        :meth:`update` extend ``diag(K^-1)`` in O(n^2) each)."""
        y, loo = self._loo_targets()
        if self._warp is None:
            return y, loo
        return self._warp.inverse(y), self._warp.inverse(loo)

    def loo_std(self) -> np.ndarray:
        """Leave-one-out predictive standard deviations of the conditioned window (the order of
        :meth:`loo_predictions`), in target units: ``1 / sqrt([K^-1]_ii)``, mapped back like :meth:`predict`'s."""
        std: np.ndarray = self._sigma / np.sqrt(self._inverse_diagonal())
        if self._warp is None:
            return std
        mapped: np.ndarray = np.maximum(self._warp.inverse_std(self._loo_targets()[1], std), 1e-12)
        return mapped

    def _loo_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """(targets, leave-one-out means) of the conditioned window in the fitted (possibly warped) units."""
        loo = self._y - self._alpha / self._inverse_diagonal()
        return self._mu + self._sigma * self._y, self._mu + self._sigma * loo

    def _inverse_diagonal(self) -> np.ndarray:
        """``diag(K^-1)`` of the conditioned window: one triangular inverse after a fit, extended by :meth:`update`."""
        if self._k_inv_diag is None:
            L_inv = solve_triangular(self._L, np.eye(len(self._L)), lower=True, check_finite=False)
            self._k_inv_diag = np.einsum("ij,ij->j", L_inv, L_inv)
        return self._k_inv_diag

    @property
    def hyperparameters(self) -> dict[str, float]:
        """Fitted constant, length scale (feature group 0's with groups), noise, linear weight if any and the other
        groups' length scales (``length_scale_1``, ...), in standardised, possibly warped, target units."""
        extra = tuple(f"length_scale_{g}" for g in range(1, len(self.theta) - self._n_base + 1))
        names = ("constant", "length_scale", "noise", "linear")[: self._n_base] + extra
        return {name: float(v) for name, v in zip(names, np.exp(self.theta), strict=True)}

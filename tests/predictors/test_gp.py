import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from elasticnas.predictors import GPPredictor
from elasticnas.predictors._gp import _sq_dists


def _data(n: int, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < 0.5).astype(float)
    y = X @ rng.normal(size=d) + np.sin(3 * X[:, 0] * X[:, 1]) + 0.05 * rng.normal(size=n)
    return X, y


def test_gp_is_scikit_learns_model() -> None:
    X, y = _data(60)
    Xt, _ = _data(30, seed=1)
    ours = GPPredictor(seed=0).fit(X, y)
    d = X.shape[1]
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.sqrt(d), (1e-1, 1e3)) + WhiteKernel(1e-2, (1e-6, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = GaussianProcessRegressor(kernel=kernel, random_state=0).fit(X, (y - y.mean()) / y.std())
    np.testing.assert_allclose(ours.theta, sk.kernel_.theta, atol=1e-4)
    mean, std = ours.predict(Xt)
    sk_mean, sk_std = sk.predict(Xt, return_std=True)
    np.testing.assert_allclose(mean, y.mean() + y.std() * sk_mean, atol=1e-5)
    np.testing.assert_allclose(std, y.std() * sk_std, atol=1e-5)


def test_update_adds_rows_as_conditioning_from_scratch_would() -> None:
    X, y = _data(90)
    Xt, _ = _data(20, seed=2)
    inc = GPPredictor(seed=0, max_train=64).fit(X[:60], y[:60])
    for k in range(63, 91, 3):  # new rows at the end, a few at a time, beyond max_train
        inc.update(X[:k], y[:k])
    assert 64 <= len(inc._X) <= 64 + 16
    np.testing.assert_array_equal(inc._X, X[90 - len(inc._X) : 90])  # the latest rows
    scratch = GPPredictor(seed=0, max_train=64).fit(X[:60], y[:60])
    scratch._condition(inc.theta, inc._X, inc._y, _sq_dists(inc._X, inc._X))  # one factorisation of that window
    for a, b in zip(inc.predict(Xt), scratch.predict(Xt), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-8)


def test_update_with_other_data_conditions_from_scratch() -> None:
    X, y = _data(50)
    gp = GPPredictor(seed=0).fit(X[:40], y[:40])
    theta = gp.theta.copy()
    gp.update(X[10:50], y[10:50])  # not an extension of the fitted rows
    np.testing.assert_array_equal(gp.theta, theta)  # hyperparameters kept
    np.testing.assert_array_equal(gp._X, X[10:50])

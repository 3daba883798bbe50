import numpy as np
import pytest

from elasticnas.errors import ElasticNASError
from elasticnas.predictors import (
    Ensemble,
    create_ensemble,
    create_predictor,
    cross_validate,
    kendall_tau,
    list_predictors,
)


def _linear_data(n: int = 80, d: int = 12, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < 0.5).astype(float)
    w = rng.normal(size=d)
    return X, X @ w + noise * rng.normal(size=n)


FAST = {"mlp": {"epochs": 60, "hidden": 32}, "gbm": {"n_estimators": 60}}


@pytest.fixture(params=list_predictors())
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_every_predictor_fits_and_ranks_a_linear_target(name: str) -> None:
    X, y = _linear_data()
    Xt, yt = _linear_data(n=40, seed=0)  # same weights (same seed), fresh rows below
    Xt = (np.random.default_rng(9).random((40, X.shape[1])) < 0.5).astype(float)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    yt = Xt @ w
    model = create_predictor(name, seed=0, **FAST.get(name, {})).fit(X, y)
    mean, std = model.predict(Xt)
    assert mean.shape == std.shape == (40,)
    assert np.all(np.isfinite(mean)) and np.all(std >= 0)
    assert kendall_tau(yt, mean) > 0.4


def test_same_seed_same_predictions(name: str) -> None:
    X, y = _linear_data()
    a = create_predictor(name, seed=3, **FAST.get(name, {})).fit(X, y).predict(X[:10])
    b = create_predictor(name, seed=3, **FAST.get(name, {})).fit(X, y).predict(X[:10])
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])


def test_predict_before_fit_raises() -> None:
    with pytest.raises(ElasticNASError):
        create_predictor("ridge").predict(np.zeros((2, 3)))


def test_fit_rejects_bad_targets() -> None:
    with pytest.raises(ElasticNASError):
        create_predictor("ridge").fit(np.zeros((3, 2)), np.array([1.0, np.nan, 2.0]))


def test_uncertainty_grows_away_from_the_data() -> None:
    X, y = _linear_data(n=60, d=6)
    gp = create_predictor("gp", seed=0).fit(X, y)
    _, near = gp.predict(X[:5])
    _, far = gp.predict(np.full((5, 6), 4.0))
    assert far.mean() > 3 * near.mean()


def test_ensemble_std_includes_member_disagreement() -> None:
    X, y = _linear_data()
    ens = create_ensemble(["ridge", "extra_trees"], seed=0).fit(X, y)
    assert isinstance(ens, Ensemble)
    mean, std = ens.predict(X)
    m1, s1 = ens.members[0].predict(X)
    m2, s2 = ens.members[1].predict(X)
    np.testing.assert_allclose(mean, (m1 + m2) / 2)
    np.testing.assert_allclose(std**2, (s1**2 + s2**2) / 2 + ((m1 - m2) / 2) ** 2)


def test_cross_validation_tells_signal_from_noise() -> None:
    X, y = _linear_data(n=100)
    good = cross_validate(lambda: create_predictor("ridge"), X, y, n_folds=5, seed=0)
    assert good.kendall_tau > 0.8 and good.n_train == 100
    noise = np.random.default_rng(5).normal(size=100)
    bad = cross_validate(lambda: create_predictor("ridge"), X, noise, n_folds=5, seed=0)
    assert abs(bad.kendall_tau) < 0.3
    assert bad.mae > good.mae


def test_gp_beyond_max_train_fits_the_most_recent_rows():
    from elasticnas.predictors import GPPredictor

    X = np.eye(10)
    y = np.array([-100.0] * 5 + [1.0, 2.0, 3.0, 4.0, 5.0])
    mean, _ = GPPredictor(seed=0, max_train=5).fit(X, y).predict(X)
    assert np.all(mean > -10)  # the first five rows (y = -100) were left out of the fit
    assert np.all(mean[5:] > 0) and np.corrcoef(mean[5:], y[5:])[0, 1] > 0.9  # the last five were fitted

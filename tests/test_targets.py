"""Hardware targets: one study, the front of every target (shared expensive objectives, per-target cheap ones)."""

from __future__ import annotations

import numpy as np
import pytest

import elasticnas as en
from elasticnas.errors import ElasticNASError, StorageError
from elasticnas.pareto import non_dominated_mask
from elasticnas.records import minimization_matrix

SPACE = en.SearchSpace({"w": en.Choice(list(range(6)), size=4)})
TARGETS = {"cpu": ["lat_cpu"], "gpu": ["lat_gpu"], "npu": ["lat_npu"]}
OBJECTIVES = {"acc": "maximize", "lat_cpu": "minimize", "lat_gpu": "minimize", "lat_npu": "minimize"}
# each device is slow on other genes: their fronts differ
WEIGHTS = {"lat_cpu": np.array([4.0, 1, 1, 1]), "lat_gpu": np.array([1.0, 4, 1, 1]),
           "lat_npu": np.array([1.0, 1, 1, 4])}  # fmt: skip


def accuracy(cfg):
    w = np.asarray(cfg["w"], dtype=float)
    return {"acc": float(60 + 8 * np.sqrt(w).sum() - 0.3 * w[0] * w[3])}


CHEAP = {name: (lambda cfg, wt=wt: float(wt @ np.asarray(cfg["w"], dtype=float) + 1)) for name, wt in WEIGHTS.items()}


def _study(storage=None, name=None, targets=TARGETS, n=30, searcher="predicted_hvi", seed=0):
    study = en.create_study(SPACE, OBJECTIVES, storage=storage, study_name=name, targets=targets)
    study.optimize(accuracy, n_evals=n, searcher=searcher, seed=seed, cheap_metrics=CHEAP, show_progress=False,
                   n_initial=8)  # fmt: skip
    return study


def test_each_target_has_its_own_front_over_the_shared_and_its_own_objectives(tmp_path):
    study = _study(f"sqlite:///{tmp_path / 's.db'}", "t")
    trials = study.trials
    for target, own in TARGETS.items():
        objectives = study.target_objectives(target)
        assert [o.name for o in objectives] == ["acc", *own]
        mask = non_dominated_mask(minimization_matrix(trials, objectives))
        assert {r.number for r in study.pareto_front(target=target)} == {
            r.number for r, m in zip(trials, mask, strict=True) if m
        }
        assert study.hypervolume(target=target) > 0
        assert study.hypervolume_history(target=target)[-1] == pytest.approx(study.hypervolume(target=target))
    fronts = [{r.number for r in study.pareto_front(target=t)} for t in TARGETS]
    assert fronts[0] != fronts[1] or fronts[1] != fronts[2]  # the devices trade off differently
    reopened = en.load_study(f"sqlite:///{tmp_path / 's.db'}", "t")
    assert reopened.targets == {t: tuple(m) for t, m in TARGETS.items()}
    gpu_front = [r.number for r in study.pareto_front(target="gpu")]
    assert [r.number for r in reopened.pareto_front(target="gpu")] == gpu_front
    with pytest.raises(ElasticNASError, match="no target 'tpu'; its targets: cpu, gpu, npu"):
        study.pareto_front(target="tpu")
    with pytest.raises(StorageError, match="targets"):
        en.create_study(SPACE, OBJECTIVES, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="t")


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"cpu": ["latency"]}, "'latency' is not an objective"),
        ({"cpu": ["lat_cpu"], "gpu": ["lat_cpu"]}, "belongs to targets 'cpu' and 'gpu'"),
        ({"cpu": []}, "needs a name and a list of its own objectives"),
        ({"cpu": "lat_cpu"}, "needs a name and a list of its own objectives"),
        ({}, "targets is empty"),
    ],
)
def test_bad_targets_are_one_clear_error(targets, message):
    with pytest.raises(ElasticNASError, match=message):
        en.create_study(SPACE, OBJECTIVES, targets=targets)


def test_the_searcher_ranks_by_each_targets_front_and_the_same_seed_gives_the_same_search():
    study = _study(n=24)
    searcher = study._searcher
    assert searcher.target_columns == ((0, 1), (0, 2), (0, 3))
    F = np.array([[0.0, 1, 9, 9], [1.0, 0, 9, 9], [1.0, 9, 0, 9], [2.0, 9, 9, 9]])
    # rows 0 and 1 lead the cpu front, 0 and 2 the gpu front, 0 the npu front; row 3 is behind everywhere
    assert [sorted(f.tolist()) for f in searcher._fronts(F)] == [[0, 1, 2], [3]]
    again = _study(n=24)
    assert [r.config for r in again.trials] == [r.config for r in study.trials]


def test_every_targets_front_beats_a_search_that_ignores_targets():
    """Weighing each target's front alike covers every target better than one search over all objectives at
    once (median of 3 seeds of the mean hypervolume share of the exhaustive front per target)."""
    from itertools import product

    from elasticnas.pareto import hypervolume

    configs = [{"w": list(w)} for w in product(range(6), repeat=4)]
    F = np.array([[-accuracy(c)["acc"], *(CHEAP[m](c) for m in ("lat_cpu", "lat_gpu", "lat_npu"))] for c in configs])
    ref = F.max(axis=0) + 0.1 * (F.max(axis=0) - F.min(axis=0))  # minimisation form
    best = {t: hypervolume(F[:, [0, j]], ref[[0, j]]) for j, t in enumerate(TARGETS, start=1)}
    reference_point = list(ref * [-1, 1, 1, 1])  # objective units

    def share(**kwargs):
        study = en.create_study(SPACE, OBJECTIVES, targets=TARGETS, reference_point=reference_point)
        study.optimize(accuracy, n_evals=40, cheap_metrics=CHEAP, show_progress=False, n_initial=8, **kwargs)
        return np.mean([study.hypervolume(target=t) / best[t] for t in TARGETS])

    with_targets = [share(seed=seed) for seed in range(3)]
    without = [share(seed=seed, targets=None) for seed in range(3)]
    assert max(with_targets) <= 1.0 + 1e-9
    assert np.median(with_targets) > np.median(without)

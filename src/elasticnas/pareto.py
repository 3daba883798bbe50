"""Pareto fronts and hypervolume (pymoo does the heavy lifting)."""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def non_dominated_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of a minimisation matrix ``F`` on the first front."""
    F = np.asarray(F, dtype=float)
    mask = np.zeros(len(F), dtype=bool)
    if len(F):
        mask[NonDominatedSorting().do(F, only_non_dominated_front=True)] = True
    return mask


def hypervolume(F: np.ndarray, reference_point: np.ndarray) -> float:
    """Hypervolume dominated by the rows of ``F`` (minimisation) up to ``reference_point``."""
    F = np.asarray(F, dtype=float).reshape(-1, len(reference_point))
    F = F[np.all(F < reference_point, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=np.asarray(reference_point, dtype=float))(F))


def hypervolume_history(F: np.ndarray, reference_point: np.ndarray) -> np.ndarray:
    """Hypervolume of the first ``i + 1`` rows of ``F`` for every ``i``."""
    F = np.asarray(F, dtype=float)
    out = np.zeros(len(F))
    front = np.zeros((0, F.shape[1] if F.ndim == 2 else len(reference_point)))
    current = 0.0
    for i, row in enumerate(F):
        if np.all(row < reference_point) and not np.any(np.all(front <= row, axis=1)):
            front = np.vstack([front[~np.all(row <= front, axis=1)], row])
            current = hypervolume(front, reference_point)
        out[i] = current
    return out


def objective_spans(F: np.ndarray) -> np.ndarray:
    """The range of each column of ``F``; for a column without one, its largest magnitude (at least 1)."""
    F = np.asarray(F, dtype=float)
    worst, best = F.max(axis=0), F.min(axis=0)
    span: np.ndarray = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    return span


def default_reference_point(F: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """The worst value of each column pushed out by ``margin`` of its range (:func:`objective_spans`)."""
    F = np.asarray(F, dtype=float)
    point: np.ndarray = F.max(axis=0) + margin * objective_spans(F)
    return point

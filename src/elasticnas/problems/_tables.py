"""Spaces projected onto a table of measured architectures: every configuration to its nearest table row by a
weighted Hamming distance on the genes (``hwgpt_s_*``, ``ofa_mbv3_devices``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

CHUNK = 512  # query rows per matrix product


def latency_objective(target: str) -> str:
    """The name of a hardware target's latency objective: ``latency_ms_<target>``."""
    return f"latency_ms_{target}"


def checked_targets(given: Sequence[str] | str | None, known: Sequence[str], default: Sequence[str]) -> tuple[str, ...]:
    """The hardware targets ``given`` (one name, several, or None for ``default``), in the given order;
    ValueError naming the known ones for an empty list, an unknown name or a name given twice."""
    if given is None:
        return tuple(default)
    chosen = (given,) if isinstance(given, str) else tuple(given)
    if not chosen:
        raise ValueError(f"no targets given; known targets: {', '.join(known)}")
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise ValueError(f"unknown target {unknown[0]!r}; known targets: {', '.join(known)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"targets given twice: {list(chosen)}")
    return chosen


def weighted_onehot(genes: np.ndarray, cardinalities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every gene of every row one-hot over its choices, times its weight (float32, one column per choice)."""
    G = np.atleast_2d(genes)
    offsets = np.concatenate([[0], np.cumsum(cardinalities)[:-1]])
    out = np.zeros((len(G), int(np.sum(cardinalities))), dtype=np.float32)
    out[np.repeat(np.arange(len(G)), G.shape[1]), (G + offsets).ravel()] = np.tile(weights, len(G))
    return out


def nearest_rows(
    genes: np.ndarray,
    index: Mapping[bytes, int],
    table_onehot: np.ndarray,
    cardinalities: np.ndarray,
    weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(position of the nearest table row, weighted Hamming distance to it) of every canonical gene row.

    A row found in ``index`` (table genes as bytes -> position) is at distance 0; any other is matched to the
    table's unweighted one-hot rows ``table_onehot`` by the most weighted agreement (distance = total weight -
    agreement: one matrix product per chunk), the first maximum (the lower row) on ties.
    """
    G = np.atleast_2d(genes)
    pos = np.empty(len(G), dtype=np.int64)
    dist = np.zeros(len(G))
    missing = []
    for k, g in enumerate(G):
        hit = index.get(g.tobytes())
        if hit is None:
            missing.append(k)
        else:
            pos[k] = hit
    if missing:
        total = float(np.sum(weights))
        onehot = weighted_onehot(G[missing], cardinalities, weights)
        for start in range(0, len(missing), CHUNK):
            agree = onehot[start : start + CHUNK] @ table_onehot.T
            best = np.argmax(agree, axis=1)
            chunk = np.array(missing[start : start + CHUNK])
            pos[chunk] = best
            dist[chunk] = total - agree[np.arange(len(best)), best]
    return pos, dist

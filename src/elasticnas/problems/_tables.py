"""Spaces projected onto a table of measured architectures: every configuration to its nearest table row by a
weighted Hamming distance on the genes (``hwgpt_s_*``, ``ofa_mbv3_devices``)."""

from __future__ import annotations

from collections.abc import Sequence

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


class NearestRows:
    """The nearest row of a table of canonical gene rows by a weighted Hamming distance, exactly (the lower row on
    ties).

    A query found in the table is at distance 0. Any other is first matched among the table rows that share its
    heaviest genes (the largest weight among genes that vary in the table, where weights differ; all rows where
    they do not): a match nearer than that weight is the nearest of the whole table, since every other row differs
    in a heaviest gene. The rest are matched against the whole table. A match is the most weighted agreement with
    the table's one-hot rows (distance = total weight - agreement: one matrix product per chunk of queries).
    """

    def __init__(self, genes: np.ndarray, cardinalities: np.ndarray, weights: np.ndarray) -> None:
        self._cardinalities = np.asarray(cardinalities)
        self._weights = np.asarray(weights, dtype=np.float32)
        self._total = float(np.sum(self._weights))
        self._onehot = weighted_onehot(genes, self._cardinalities, np.ones(genes.shape[1], dtype=np.float32))
        self._index = {g.tobytes(): k for k, g in enumerate(genes)}
        varying = np.flatnonzero(np.ptp(genes, axis=0) > 0)  # a gene the whole table shares separates no rows
        heaviest = float(np.max(self._weights[varying], initial=0.0))
        uniform = len(varying) == 0 or heaviest == np.min(self._weights[varying])  # one group, the whole table
        self._key = np.arange(0) if uniform else varying[self._weights[varying] == heaviest]
        self._key_weight = np.inf if uniform else heaviest
        key_cardinalities = self._cardinalities[self._key].astype(np.int64)
        self._key_radix = np.cumprod(key_cardinalities) // key_cardinalities
        codes = genes[:, self._key] @ self._key_radix
        self._groups = {int(c): (rows := np.flatnonzero(codes == c), self._onehot[rows]) for c in np.unique(codes)}

    def __call__(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(table position, weighted Hamming distance) of the nearest table row of every canonical gene row."""
        G = np.atleast_2d(genes)
        pos = np.empty(len(G), dtype=np.int64)
        dist = np.zeros(len(G))
        query_of: dict[bytes, int] = {}  # genes not in the table -> position among the distinct queries
        missing: list[int] = []  # rows not in the table
        query: list[int] = []  # the query of each
        distinct: list[int] = []  # the first row of each query
        for k, g in enumerate(G):
            key = g.tobytes()
            hit = self._index.get(key)
            if hit is not None:
                pos[k] = hit
                continue
            if key not in query_of:
                query_of[key] = len(distinct)
                distinct.append(k)
            missing.append(k)
            query.append(query_of[key])
        if missing:
            found, far = self._match(G[distinct])
            pos[missing], dist[missing] = found[query], far[query]
        return pos, dist

    def _match(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        onehot = weighted_onehot(Q, self._cardinalities, self._weights)
        pos = np.zeros(len(Q), dtype=np.int64)
        dist = np.full(len(Q), np.inf)
        codes = Q[:, self._key] @ self._key_radix
        for code in np.unique(codes):
            group = self._groups.get(int(code))
            if group is not None:
                members = np.flatnonzero(codes == code)
                best, dist[members] = self._most_agreeing(onehot[members], group[1])
                pos[members] = group[0][best]
        rest = np.flatnonzero(dist >= self._key_weight)  # not nearer than a row outside the group can be
        if len(rest):
            pos[rest], dist[rest] = self._most_agreeing(onehot[rest], self._onehot)
        return pos, dist

    def _most_agreeing(self, onehot: np.ndarray, table_onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best = np.empty(len(onehot), dtype=np.int64)
        dist = np.empty(len(onehot))
        for start in range(0, len(onehot), CHUNK):
            agree = onehot[start : start + CHUNK] @ table_onehot.T
            best[start : start + CHUNK] = np.argmax(agree, axis=1)
            dist[start : start + CHUNK] = self._total - agree[np.arange(len(agree)), best[start : start + CHUNK]]
        return best, dist

"""Build the reference front of the ``ofa_mbv3_note10`` problem with a large oracle search.

The oracle (OFA accuracy predictor + Note10 lookup table) is cheap and
vectorised, so we spend >= 10^5 evaluations on it: pymoo NSGA-II runs from
several seeds (population 1,000) and then a first-improvement local search
that tries every single-gene change of every front member until none enters
the front. Writes ``src/elasticnas/data/ofa_mbv3/note10_reference_front.csv``.

    python benchmarks/data/make_ofa_reference_front.py            # ~ a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from elasticnas.pareto import non_dominated_mask
from elasticnas.problems._ofa_mbv3 import DATA_DIR, OFAMobileNetV3Oracle, accuracy_predictor, note10_lut, ofa_mbv3_space


class _Vec(Problem):
    def __init__(self, oracle: OFAMobileNetV3Oracle) -> None:
        card = oracle.space.cardinalities
        super().__init__(n_var=len(card), n_obj=2, xl=np.zeros(len(card)), xu=card - 1, vtype=int)
        self.oracle = oracle
        self.n_calls = 0

    def _evaluate(self, X, out, *args, **kwargs):  # noqa: ANN001
        G = np.rint(X).astype(np.int64)
        self.n_calls += len(G)
        out["F"] = np.column_stack([-self.oracle.accuracy(G), self.oracle.latency(G)])


def _canonical(G: np.ndarray) -> np.ndarray:
    """Blocks skipped by their stage depth get gene 0 for kernel and expand (as the space canonicalises)."""
    G = G.copy()
    depth = np.array([2, 3, 4])[G[:, 40:45]]
    active = (np.arange(4)[None, None, :] < depth[:, :, None]).reshape(len(G), 20)
    G[:, :20][~active] = 0
    G[:, 20:40][~active] = 0
    return G


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pop", type=int, default=1000)
    ap.add_argument("--gens", type=int, default=150)
    ap.add_argument("--out", type=Path, default=DATA_DIR / "note10_reference_front.csv")
    args = ap.parse_args()
    t0 = time.time()
    space = ofa_mbv3_space()
    oracle = OFAMobileNetV3Oracle(space, note10_lut(), accuracy_predictor())
    prob = _Vec(oracle)
    Xs, Fs = [], []
    for seed in range(args.seeds):
        algo = NSGA2(
            pop_size=args.pop,
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        res = minimize(prob, algo, ("n_gen", args.gens), seed=seed, verbose=False)
        Xs.append(np.rint(res.pop.get("X")).astype(np.int64))
        Fs.append(res.pop.get("F"))
        print(f"seed {seed}: {prob.n_calls} oracle calls, {time.time() - t0:.0f} s", flush=True)
    X, F = np.vstack(Xs), np.vstack(Fs)
    m = non_dominated_mask(F)
    X, F = _canonical(X[m]), F[m]
    card = space.cardinalities
    # local search: every single-gene change of every front member
    for sweep in range(100):
        nb = []
        for g in X:
            for i in range(len(card)):
                for v in range(card[i]):
                    if v != g[i]:
                        h = g.copy()
                        h[i] = v
                        nb.append(h)
        NB = np.unique(_canonical(np.array(nb)), axis=0)
        prob.n_calls += len(NB)
        FN = np.column_stack([-oracle.accuracy(NB), oracle.latency(NB)])
        allX, allF = np.vstack([X, NB]), np.vstack([F, FN])
        m = non_dominated_mask(allF)
        newX, newF = allX[m], allF[m]
        _, keep = np.unique(np.round(newF, 10), axis=0, return_index=True)
        newX, newF = newX[np.sort(keep)], newF[np.sort(keep)]
        changed = len({g.tobytes() for g in newX} - {g.tobytes() for g in X})
        X, F = newX, newF
        print(f"sweep {sweep}: front {len(X)}, {changed} new, {prob.n_calls} oracle calls", flush=True)
        if changed == 0:
            break
    order = np.argsort(F[:, 1])
    X, F = X[order], F[order]
    with open(args.out, "w") as fh:
        fh.write("accuracy_top1,latency_note10_ms,config\n")
        for g, f in zip(X, F, strict=True):
            cfg = json.dumps(space.from_genes(g), separators=(",", ":"))
            fh.write(f"{-f[0]:.6f},{f[1]:.6f},\"{cfg.replace(chr(34), chr(34) * 2)}\"\n")
    print(f"{len(X)} points, {prob.n_calls} oracle evaluations, {time.time() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()

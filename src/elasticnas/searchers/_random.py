from __future__ import annotations

from elasticnas.searchers.base import Searcher
from elasticnas.space import Config


class RandomSearcher(Searcher):
    """Uniform random sampling of the space."""

    def _propose(self, n: int) -> list[Config]:
        return self.space.sample_many(n, self.rng)

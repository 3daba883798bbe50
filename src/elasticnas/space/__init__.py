"""Search spaces: named discrete choices, validation, sampling, variation, encodings."""

from elasticnas.space._choice import Choice
from elasticnas.space._space import Config, ProductSpace, SearchSpace, Seed, as_rng

__all__ = ["Choice", "Config", "ProductSpace", "SearchSpace", "Seed", "as_rng"]

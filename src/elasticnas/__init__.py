"""elasticnas: train once as an elastic super-network, then find Pareto-optimal sub-networks."""

from elasticnas.errors import (
    CheckpointError,
    ElasticNASError,
    EvaluationError,
    InvalidConfigError,
    StorageError,
    UnknownNameError,
)
from elasticnas.export import export_subnet, load_subnet
from elasticnas.records import Constraint, Objective, TrialRecord
from elasticnas.searchers import Searcher, create_searcher, list_searchers, register_searcher
from elasticnas.space import Choice, SearchSpace
from elasticnas.study import Study, create_study, load_study
from elasticnas.supernets import Supernet, create_supernet, list_supernets, register_supernet

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Choice",
    "Constraint",
    "ElasticNASError",
    "EvaluationError",
    "InvalidConfigError",
    "Objective",
    "SearchSpace",
    "Searcher",
    "StorageError",
    "Study",
    "Supernet",
    "TrialRecord",
    "UnknownNameError",
    "__version__",
    "create_searcher",
    "create_study",
    "create_supernet",
    "export_subnet",
    "list_searchers",
    "list_supernets",
    "load_study",
    "load_subnet",
    "register_searcher",
    "register_supernet",
]

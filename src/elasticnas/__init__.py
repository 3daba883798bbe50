"""elasticnas: train once as an elastic super-network, then find Pareto-optimal sub-networks.

The public names below are imported on first use (PEP 562), so ``import elasticnas`` stays
cheap: PyTorch, scikit-learn, SciPy, pymoo and Optuna load only when a name needing them
(``elasticnas.Study``, ``elasticnas.create_supernet``, ...) is first touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elasticnas.errors import (
    CheckpointError,
    ElasticNASError,
    EvaluationError,
    InvalidConfigError,
    StorageError,
    UnknownNameError,
)
from elasticnas.registry import lazy_exports

if TYPE_CHECKING:
    from elasticnas.export import export_subnet, load_subnet
    from elasticnas.problems import supernet_problem
    from elasticnas.records import Constraint, Objective, TrialRecord
    from elasticnas.searchers import Searcher, create_searcher, list_searchers, register_searcher
    from elasticnas.space import Choice, SearchSpace
    from elasticnas.study import Study, Trial, create_study, extremes, list_studies, load_study
    from elasticnas.supernets import Supernet, create_supernet, list_supernets, register_supernet
    from elasticnas.supernets.hf import elasticize

__version__ = "0.1.0"

_LAZY = {
    "export_subnet": "elasticnas.export",
    "load_subnet": "elasticnas.export",
    "Constraint": "elasticnas.records",
    "Objective": "elasticnas.records",
    "TrialRecord": "elasticnas.records",
    "Searcher": "elasticnas.searchers",
    "create_searcher": "elasticnas.searchers",
    "list_searchers": "elasticnas.searchers",
    "register_searcher": "elasticnas.searchers",
    "Choice": "elasticnas.space",
    "SearchSpace": "elasticnas.space",
    "Study": "elasticnas.study",
    "Trial": "elasticnas.study",
    "list_studies": "elasticnas.study",
    "extremes": "elasticnas.study",
    "supernet_problem": "elasticnas.problems",
    "create_study": "elasticnas.study",
    "load_study": "elasticnas.study",
    "Supernet": "elasticnas.supernets",
    "create_supernet": "elasticnas.supernets",
    "list_supernets": "elasticnas.supernets",
    "register_supernet": "elasticnas.supernets",
    "elasticize": "elasticnas.supernets.hf",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
    "Trial",
    "TrialRecord",
    "UnknownNameError",
    "__version__",
    "create_searcher",
    "create_study",
    "create_supernet",
    "elasticize",
    "export_subnet",
    "extremes",
    "list_searchers",
    "list_studies",
    "list_supernets",
    "load_study",
    "load_subnet",
    "register_searcher",
    "register_supernet",
    "supernet_problem",
]

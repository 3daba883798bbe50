"""Built-in benchmark problems: a space, objectives, an expensive evaluation and exact cheap metrics.

    problem = create_problem("ofa_mbv3_note10")
    study = create_study(**problem.study_kwargs())
    study.optimize(problem.evaluate, n_evals=200, cheap_metrics=problem.cheap_metrics)
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from elasticnas.problems._supernet import builtin_data, supernet_problem
from elasticnas.problems.base import Problem
from elasticnas.registry import Registry

PROBLEMS: Registry[Callable[[], Problem]] = Registry("problem")


def register_problem(name: str, factory: Callable[[], Problem], *, aliases: tuple[str, ...] = ()) -> None:
    """Register a factory building the problem ``name`` (called once; the problem is cached)."""
    PROBLEMS.register(name, factory, aliases=aliases)


def list_problems(pattern: str | None = None) -> list[str]:
    """Names of the registered problems."""
    return PROBLEMS.names(pattern)


@functools.cache
def _build(name: str) -> Problem:
    return PROBLEMS.get(name)()


def create_problem(name: str) -> Problem:
    """The problem registered as ``name`` (built on first use, then shared: problems are immutable)."""
    return _build(PROBLEMS.canonical(name))


def _ofa_mbv3_note10() -> Problem:
    from elasticnas.problems._ofa_mbv3 import make_ofa_mbv3_note10

    return make_ofa_mbv3_note10()


def _ofa_mbv3_devices() -> Problem:
    from elasticnas.problems._ofa_devices import make_ofa_mbv3_devices_problem

    return make_ofa_mbv3_devices_problem()


def _hwgpt_s_gpu() -> Problem:
    from elasticnas.problems._hwgpt import make_hwgpt_problem

    return make_hwgpt_problem("gpu")


def _hwgpt_s_cpu() -> Problem:
    from elasticnas.problems._hwgpt import make_hwgpt_problem

    return make_hwgpt_problem("cpu")


def _hwgpt_s_devices() -> Problem:
    from elasticnas.problems._hwgpt import make_hwgpt_devices_problem

    return make_hwgpt_devices_problem()


register_problem("ofa_mbv3_note10", _ofa_mbv3_note10)
register_problem("ofa_mbv3_devices", _ofa_mbv3_devices)
register_problem("hwgpt_s_gpu", _hwgpt_s_gpu)
register_problem("hwgpt_s_cpu", _hwgpt_s_cpu)
register_problem("hwgpt_s_devices", _hwgpt_s_devices)

__all__ = [
    "PROBLEMS",
    "Problem",
    "builtin_data",
    "create_problem",
    "list_problems",
    "register_problem",
    "supernet_problem",
]

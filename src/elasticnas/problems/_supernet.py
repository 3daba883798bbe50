"""A search problem over a super-network: its space, measured by registered metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticnas.errors import ElasticNASError
from elasticnas.problems.base import Problem


def supernet_problem(
    supernet: Any,
    objectives: Sequence[str],
    *,
    extra_metrics: Sequence[str] = (),
    **measurer_kwargs: Any,
) -> Problem:
    """The problem of finding the Pareto front of ``supernet`` on registered metrics.

    ``objectives`` and ``extra_metrics`` (e.g. metrics named in constraints)
    are names from :func:`elasticnas.measure.list_metrics`; the expensive ones
    are measured by ``evaluate``, the cheap ones (MACs, params, lookup-table
    latency, ...) exactly for every candidate. ``measurer_kwargs`` go to
    :class:`elasticnas.measure.Measurer` (runtime, device, batch size, data, ...); the problem's
    ``measurement`` records them (:meth:`Measurer.settings`) for a study to keep.
    """
    from elasticnas.measure import Measurer, get_metric

    if not objectives:
        raise ElasticNASError("at least one objective metric is needed, e.g. accuracy_top1,latency_ms")
    names = list(dict.fromkeys([*objectives, *extra_metrics]))
    metrics = [get_metric(n) for n in names]
    measurer = Measurer(supernet, **measurer_kwargs)
    measurer.check([m.name for m in metrics])
    expensive = [m.name for m in metrics if not m.cheap]
    cheap = [m.name for m in metrics if m.cheap]
    evaluate = measurer.evaluator(expensive) if expensive else (lambda config: {})
    return Problem(
        name=supernet.name,
        space=supernet.search_space,
        objectives={get_metric(n).name: get_metric(n).direction for n in objectives},
        evaluate=evaluate,
        cheap_metrics=measurer.cheap_metrics(cheap) if cheap else {},
        description=f"super-network {supernet.name}: "
        + ", ".join(f"{m.name} ({'cheap' if m.cheap else 'measured'})" for m in metrics),
        measurement=measurer.settings(),
    )


# super-network -> validation and calibration splits of the built-in data set it was trained on
BUILTIN_DATA = {"tiny_mbv3": ("digits:val", "digits:calib"), "tiny_gpt": ("pystdlib:val", "pystdlib:train")}


def builtin_data(supernet_name: str) -> dict[str, str]:
    """Validation and calibration splits of the data set shipped for a super-network, as data specs
    (``{"val_data": "digits:val", "calib_data": "digits:calib"}``), which a study records."""
    if supernet_name not in BUILTIN_DATA:
        raise ElasticNASError(
            f"super-network {supernet_name!r} has no built-in data set; pass --val-data DATA: an image folder "
            "(ImageNet layout: DIR/<class>/<image>) or a built-in NAME:SPLIT such as pystdlib:val, and for "
            "BatchNorm networks --calib-data DATA (training images for recalibration)"
        )
    val, calib = BUILTIN_DATA[supernet_name]
    return {"val_data": val, "calib_data": calib}

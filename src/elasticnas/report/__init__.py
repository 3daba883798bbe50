"""Outputs of a study: Pareto tables, SVG plots and the self-contained HTML report."""

from elasticnas.report.html import poor_predictions, render_report, write_report
from elasticnas.report.plots import hypervolume_plot, pareto_plot, point_tip, staircase
from elasticnas.report.table import format_table, pareto_rows, target_rows, write_csv

__all__ = [
    "format_table",
    "hypervolume_plot",
    "pareto_plot",
    "pareto_rows",
    "point_tip",
    "poor_predictions",
    "render_report",
    "staircase",
    "target_rows",
    "write_csv",
    "write_report",
]

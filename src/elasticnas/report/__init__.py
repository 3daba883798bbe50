"""Outputs of a study: plots, Pareto tables and the HTML report."""

from elasticnas.report.html import render_report, write_report
from elasticnas.report.plots import figure_to_svg, hypervolume_curve, pareto_scatter
from elasticnas.report.table import format_table, pareto_rows, write_csv

__all__ = [
    "figure_to_svg",
    "format_table",
    "hypervolume_curve",
    "pareto_rows",
    "pareto_scatter",
    "render_report",
    "write_csv",
    "write_report",
]

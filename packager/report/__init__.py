"""Reports: the comparison rows shared by the CLI table, report.json, report.md and the model card (packager.provenance.card)."""

from packager.report.tables import comparison_rows, markdown_report

__all__ = ["comparison_rows", "markdown_report"]

"""The HTML report (``marketsim report``) and the comparison table (``marketsim compare``).

`build_report` writes one self-contained HTML file: charts as inline PNG, inline CSS, no
scripts and no external links; every name from the results is escaped.
"""

from marketsim.report.build import build_report
from marketsim.report.compare import compare_table

__all__ = ["build_report", "compare_table"]

"""The run report: one self-contained report.html with plots, rebuilt from the files any run leaves.

`write_report(run_dir)` is what `gemmaflow report` and `gemmaflow demo` call; docs/run-report.md
lists each plot and the file it reads.
"""

from gemmaflow.report.build import REPORT_FILE, write_report
from gemmaflow.report.readers import ReportInputError

__all__ = ["REPORT_FILE", "ReportInputError", "write_report"]

"""``optimas-lg report JOB_ID``: write an optimization job's report."""

from __future__ import annotations

from pathlib import Path

import typer

from optimas_lg.cli.common import StoreOption, console, friendly_errors
from optimas_lg.store import Store


@friendly_errors
def report(job_id: int = typer.Argument(..., help="Id of the optimize job."),
           out: Path | None = typer.Option(None, "--out", help="Folder for the report "
                                           "(default: STORAGE_HOME/reports/STORE_ID/JOB_ID/)"),
           store: str = StoreOption) -> None:
    """Write report.md, report.html and plots for an optimize job (running or finished)."""
    from optimas_lg.loop.report import report_dir, write_report  # matplotlib only when a report is made

    with Store(store) as s:
        path = write_report(s, job_id, out or report_dir(s, job_id))
    console.print(f"report written to {path} (and {path.with_suffix('.html').name}, plots beside it)",
                  highlight=False, soft_wrap=True)

"""The ``optimas-lg`` command line. Each command group lives in its own module and is
registered here."""

from __future__ import annotations

import typer

from optimas_lg.cli import inspect as inspect_cmd
from optimas_lg.cli import lrf as lrf_cmd
from optimas_lg.cli import optimize as optimize_cmd
from optimas_lg.cli import pairs as pairs_cmd
from optimas_lg.cli import publish as publish_cmd
from optimas_lg.cli import report as report_cmd
from optimas_lg.cli import run as run_cmd
from optimas_lg.cli import serve as serve_cmd
from optimas_lg.cli import store as store_cmd

app = typer.Typer(
    name="optimas-lg",
    help="Optimize LangGraph agents end to end with globally aligned local rewards (Optimas).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("optimize")(optimize_cmd.optimize)
app.add_typer(store_cmd.app, name="store")
app.command("report")(report_cmd.report)
app.command("inspect")(inspect_cmd.inspect)
app.command("run")(run_cmd.run)
app.command("serve")(serve_cmd.serve)
app.command("pairs")(pairs_cmd.pairs)
app.add_typer(lrf_cmd.app, name="lrf")
app.command("publish")(publish_cmd.publish)

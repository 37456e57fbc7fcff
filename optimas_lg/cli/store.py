"""``optimas-lg store ...``: look into a run store."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from optimas_lg.cli.common import StoreOption, console, friendly_errors
from optimas_lg.store import Store

app = typer.Typer(help="Inspect the run store (SQLite by default).", no_args_is_help=True)


@app.command("info")
@friendly_errors
def info(store: str = StoreOption, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show what is in a store: rows per table, size on disk and schema version."""
    with Store(store) as s:
        result = s.info()
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    size = f", {result.size_bytes / 1e6:.1f} MB" if result.size_bytes is not None else ""
    console.print(f"store {result.url} (schema v{result.schema_version}{size})", highlight=False)
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in result.tables.items():
        table.add_row(name, f"{count:,}")
    console.print(table)

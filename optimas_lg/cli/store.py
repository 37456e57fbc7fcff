"""``optimas-lg store ...``: look into a run store."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from optimas_lg.cli.common import StoreOption, console, friendly_errors
from optimas_lg.pricing import PriceTable, Usage, usd
from optimas_lg.store import Store, queries

app = typer.Typer(help="Inspect the run store (SQLite by default).", no_args_is_help=True)


@app.command("info")
@friendly_errors
def info(store: str = StoreOption, as_json: bool = typer.Option(False, "--json", help="Print JSON."),
         prices: Path | None = typer.Option(None, "--prices", help="JSON price table "
                                            '{"model": {"prompt": USD, "completion": USD}} per 1M tokens, '
                                            "over the default one.")) -> None:
    """Show what is in a store: rows per table, size on disk, schema version and LLM spend."""
    table_of_prices = PriceTable(json.loads(prices.read_text()) if prices else None)
    with Store(store) as s:
        result = s.info()
        usage = [Usage(*row) for row in queries.token_usage(s)]
    spend = table_of_prices.spend(usage)
    if as_json:
        console.print_json(json.dumps({**result.to_dict(), "spend": {
            "usd": spend.total, "by_model": spend.by_model, "unpriced": spend.unpriced}}))
        return
    size = f", {result.size_bytes / 1e6:.1f} MB" if result.size_bytes is not None else ""
    console.print(f"store {result.url} (schema v{result.schema_version}{size})", highlight=False)
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in result.tables.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    tokens = sum(u.prompt_tokens + u.completion_tokens for u in usage)
    unpriced = f"; unpriced: {', '.join(spend.unpriced)}" if spend.unpriced else ""
    console.print(f"LLM spend: {tokens:,} tokens, {usd(spend.total)}{unpriced}", highlight=False)


@app.command("jobs")
@friendly_errors
def jobs(store: str = StoreOption, limit: int = typer.Option(20, "--limit", help="How many of the newest jobs."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the newest jobs: id, kind, status, target and times (the id to pass to
    `optimize --resume` or `report`)."""
    with Store(store) as s:
        rows = [{"id": j.id, "kind": j.kind, "status": j.status, "target": j.target,
                 "created": f"{j.created_at:%Y-%m-%d %H:%M}",
                 "finished": f"{j.finished_at:%Y-%m-%d %H:%M}" if j.finished_at else None}
                for j in queries.recent_jobs(s, limit)]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    columns = ("id", "kind", "status", "target", "created", "finished")
    table = Table()
    for column in columns:
        table.add_column(column, justify="right" if column == "id" else "left")
    for row in rows:
        table.add_row(*(str(row[c] or "") for c in columns))
    console.print(table)


@app.command("release")
@friendly_errors
def release(job: int = typer.Argument(..., help="The running job's id (`store jobs`)."),
            store: str = StoreOption) -> None:
    """Mark interrupted a job still shown `running` whose process ended on another machine
    (this one can only check its own processes), so `optimize --resume` can take it."""
    with Store(store) as s:
        s.release_job(job)
    console.print(f"job {job} marked interrupted; continue it with optimas-lg optimize --resume {job}", highlight=False)

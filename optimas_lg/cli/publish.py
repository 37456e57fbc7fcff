"""``optimas-lg publish JOB --server URL --graph GRAPH_ID``: a job's best config as a LangGraph Server assistant."""

from __future__ import annotations

import json
from typing import Any

import typer

from optimas_lg.cli.common import GRAPH_HELP, SERVER_HELP, StoreOption, console, friendly_errors
from optimas_lg.publishing import Published
from optimas_lg.publishing import publish as publish_job


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _score(before: Any, after: Any) -> str:
    if before is None or after is None:
        return "n/a"
    return f"{before:.3f} → {after:.3f} ({after - before:+.3f})"


def _summary(result: Published) -> list[str]:
    where = f"assistant {result.name!r} of graph {result.graph_id!r} on {result.server}"
    if result.dry_run:
        head = (f"dry run: would create {where}" if result.created else
                f"dry run: would update {where} ({result.assistant_id}) to a new version")
    else:
        head = (f"{'created' if result.created else 'updated'} {where}: "
                f"assistant_id {result.assistant_id}, version {result.version}")
    lines = [head]
    if result.changes:
        lines.append("context changes (before → published):")
        lines += [f"  {knob}: {_value(c.old)} → {_value(c.new)}" for knob, c in result.changes.items()]
    else:
        lines.append("context changes: none (runs already use these knob values)")
    meta = {k.removeprefix("optimas_lg_"): v for k, v in result.metadata.items() if k.startswith("optimas_lg_")}
    lines.append(f"metadata: job {meta['job_id']}, store {meta['store_url']} (id {meta['store_id']}), "
                 f"val {_score(meta['val_before'], meta['val_after'])}, "
                 f"test {_score(meta['test_before'], meta['test_after'])}")
    if result.dry_run:
        lines.append("nothing was changed")
    return lines


@friendly_errors
def publish(job_id: int = typer.Argument(..., help="Id of a finished optimize job."),
            server: str = typer.Option(..., "--server", help=SERVER_HELP),
            graph: str = typer.Option(..., "--graph", help=GRAPH_HELP),
            assistant: str | None = typer.Option(None, "--assistant", help="Name of the assistant to create or "
                                                 "update (default: GRAPH-optimized)."),
            dry_run: bool = typer.Option(False, "--dry-run", help="Print the knob values that would change; "
                                         "change nothing."),
            store: str | None = StoreOption) -> None:
    """Publish a finished optimize job's best config as an assistant on a LangGraph Server.

    Creates the assistant, or a new version of the one with that name; metadata: job, store, val/test scores.

    Only a finished (done) job is published: a running, failed or interrupted one has no final test score.
    """
    result = publish_job(job_id, server=server, graph_id=graph, assistant=assistant, dry_run=dry_run, store=store)
    for line in _summary(result):
        console.print(line, highlight=False, markup=False, soft_wrap=True)

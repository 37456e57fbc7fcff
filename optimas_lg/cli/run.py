"""``optimas-lg run TARGET --data FILE --metric TARGET``: run a dataset, record and score every run."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from optimas_lg.cli.common import (
    KEY_HELP,
    ContextOption,
    GraphIdOption,
    RunOnServerOption,
    StoreOption,
    console,
    context_values,
    friendly_errors,
    knob_values,
    server_of,
)
from optimas_lg.data import check_metric, field_names, load_examples
from optimas_lg.errors import DataError, Interrupted, error_line
from optimas_lg.execution.runner import RunSummary, run_examples
from optimas_lg.graph.system import System
from optimas_lg.graph.target import load_target
from optimas_lg.store import Store
from optimas_lg.store.lifecycle import sigterm_as_interrupt

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a Ctrl-C


@friendly_errors
def run(
    target: str = typer.Argument(..., help="The graph: path/to/file.py:attr or package.module:attr."),
    data: Path = typer.Option(..., "--data", help="Dataset file (.jsonl, .json or .csv)."),
    metric: str = typer.Option(..., "--metric", help="Metric (example, output) -> float | {score, feedback}, "
                               "as path/to/file.py:attr or package.module:attr."),
    config: str | None = typer.Option(None, "--config", help="Knob values as a JSON object or JSON file "
                                         "(unset knobs keep their defaults)."),
    inputs: list[str] | None = typer.Option(None, "--inputs", help="Row fields that form the graph input "
                                               "(repeat or comma-separate; default: all but labels and key)."),
    labels: list[str] | None = typer.Option(None, "--labels", help="Row fields the metric compares against."),
    key: str | None = typer.Option(None, "--key", help=KEY_HELP),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Runs in flight at once."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Run only the first N examples."),
    context: str | None = ContextOption,
    server: str | None = RunOnServerOption,
    graph: str | None = GraphIdOption,
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run a dataset through the graph under one knob assignment; record every node call; print the mean."""
    on = server_of(server, graph)
    system = System.load(target, context=context_values(context))
    metric_fn = load_target(metric)
    check_metric(metric_fn, metric)
    examples = load_examples(data, field_names(inputs), field_names(labels), key)[:limit]
    if not examples:
        raise DataError(f"{data}: no examples to run")
    system.check_inputs(examples, field_names(inputs))
    knobs = system.knob_values(knob_values(config))
    meta = {"data": str(data), "metric": metric, **({"server": on.to_dict()} if on else {})}
    with Store(store) as s, sigterm_as_interrupt():
        job_id = s.create_job("run", target, meta)
        try:
            config_id = s.add_config(knobs, target=target, note="optimas-lg run")
            summary = run_examples(system, examples, metric_fn, knobs, s, job_id=job_id, config_id=config_id,
                                   concurrency=concurrency, progress=not as_json, server=on)
        except Interrupted as stop:
            s.finish_job(job_id, "interrupted", {**stop.done.to_dict(), **meta, "not_run": stop.pending})
            _report(stop.done, job_id, as_json, not_run=stop.pending)
            raise typer.Exit(INTERRUPTED_EXIT) from None
        except KeyboardInterrupt:
            s.finish_job(job_id, "interrupted", meta)
            raise
        except BaseException as exc:
            s.finish_job(job_id, "failed", {**meta, "error": f"{type(exc).__name__}: {exc}"})
            raise
        nothing_scored = bool(summary.n_runs) and summary.n_failed == summary.n_runs
        s.finish_job(job_id, "failed" if nothing_scored else "done",
                     {**summary.to_dict(), **meta, **({"error": "every run failed"} if nothing_scored else {})})
    _report(summary, job_id, as_json)
    if nothing_scored:
        raise typer.Exit(1)  # a script must not read this as success


def _report(summary: RunSummary, job_id: int, as_json: bool, not_run: int | None = None) -> None:
    """The summary line (or JSON) and one line per failed run; ``not_run`` after a Ctrl-C."""
    if as_json:
        print(json.dumps({**summary.to_dict(), **({"interrupted": True, "not_run": not_run} if not_run is not None
                                                   else {})}))
        return
    if not_run is not None:
        console.print(f"interrupted: {not_run} examples not run (job {job_id} marked interrupted)", highlight=False)
    mean = "n/a (every run failed)" if summary.mean is None else f"{summary.mean:.4f}"
    if summary.mean is not None and summary.n_failed:  # optimize's evaluations and gate count a failed run as 0
        mean += f" ({sum(summary.scores) / summary.n_runs:.4f} with the failed as 0, as optimize counts them)"
    console.print(f"mean score {mean} over {summary.n_runs - summary.n_failed} runs; "
                  f"{summary.n_failed} failed; job {job_id}, config {summary.config_id}", highlight=False,
                  soft_wrap=True)
    for result in summary.results:
        if result.error:
            console.print(f"  failed {result.example_key}: {error_line(result.error)}", highlight=False,
                          markup=False, soft_wrap=True)

"""``optimas-lg run TARGET --data FILE --metric TARGET``: run a dataset, record and score every run."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from optimas_lg.cli.common import StoreOption, console, field_names, friendly_errors, knob_values
from optimas_lg.data import load_examples
from optimas_lg.errors import DataError, TargetError, error_line
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph.system import System
from optimas_lg.graph.target import load_target
from optimas_lg.store import Store


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
    key: str = typer.Option("id", "--key", help="Row field with a unique example id (default: row number)."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Runs in flight at once."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Run only the first N examples."),
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run a dataset through the graph under one knob assignment; record every node call; print the mean."""
    system = System.load(target)
    metric_fn = load_target(metric)
    if not callable(metric_fn):
        raise TargetError(f"metric {metric!r} is a {type(metric_fn).__name__}, not a function")
    examples = load_examples(data, field_names(inputs), field_names(labels), key)[:limit]
    if not examples:
        raise DataError(f"{data}: no examples to run")
    knobs = system.knob_values(knob_values(config))
    with Store(store) as s:
        job_id = s.create_job("run", target, {"data": str(data), "metric": metric})
        config_id = s.add_config(knobs, target=target, note="optimas-lg run")
        summary = run_examples(system, examples, metric_fn, knobs, s, job_id=job_id, config_id=config_id,
                               concurrency=concurrency, progress=not as_json)
        s.finish_job(job_id, "done", {**summary.to_dict(), "data": str(data), "metric": metric})
    if as_json:
        print(json.dumps(summary.to_dict()))
        return
    mean = "n/a (every run failed)" if summary.mean is None else f"{summary.mean:.4f}"
    console.print(f"mean score {mean} over {summary.n_runs - summary.n_failed} runs; "
                  f"{summary.n_failed} failed; job {job_id}, config {config_id}", highlight=False)
    for result in summary.results:
        if result.error:
            console.print(f"  failed {result.example_key}: {error_line(result.error)}", highlight=False,
                          markup=False, soft_wrap=True)

"""``optimas-lg optimize``: run (or resume) the optimizer loop with live progress."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from optimas_lg.cli.common import (
    KEY_HELP,
    ContextOption,
    GraphIdOption,
    RunOnServerOption,
    StoreOption,
    console,
    context_values,
    err_console,
    friendly_errors,
    knob_values,
    server_of,
)
from optimas_lg.errors import OptimasError, SettingsError
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.progress import printer
from optimas_lg.store import Store, queries
from optimas_lg.store.lifecycle import sigterm_as_interrupt

if TYPE_CHECKING:
    from optimas_lg.api import Result


@friendly_errors
def optimize(
    target: str | None = typer.Argument(None, help="Graph to optimize: path/file.py:builder or module:attr."),
    data: Path | None = typer.Option(None, "--data", help="Training data (.jsonl, .json or .csv)."),
    metric: str | None = typer.Option(None, "--metric", help="Metric: path/file.py:fn, fn(example, output) -> float."),
    val: Path | None = typer.Option(None, "--val", help="Validation data (default: a split of --data)."),
    test: Path | None = typer.Option(None, "--test", help="Test data, scored before and after."),
    inputs: list[str] | None = typer.Option(None, "--inputs", help="Row fields fed to the graph "
                                            "(repeat or comma-separate; default: all but labels)."),
    labels: list[str] | None = typer.Option(None, "--labels", help="Row fields the metric reads "
                                            "(repeat or comma-separate, e.g. answer)."),
    key: str | None = typer.Option(None, "--key", help=KEY_HELP),
    config: str | None = typer.Option(None, "--config", help="Knob values to start from instead of the defaults, "
                                      "as a JSON object or JSON file (unset knobs keep their defaults)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the validation split, node picks and samples."),
    max_iterations: int | None = typer.Option(None, "--max-iterations", help="Optimization rounds."),
    max_system_runs: int | None = typer.Option(None, "--max-system-runs", "--max-runs",
                                               help="Limit on system runs (the test set's scoring is not counted)."),
    max_llm_tokens: int | None = typer.Option(None, "--max-llm-tokens", "--max-tokens",
                                              help="Limit on LLM tokens (system runs, pairs and proposers)."),
    max_seconds: float | None = typer.Option(None, "--max-seconds", help="Limit on wall time."),
    max_cost: float | None = typer.Option(None, "--max-cost", help="Limit on LLM spend in USD (settings' prices)."),
    patience: int | None = typer.Option(None, "--patience", help="Stop after this many rounds without a gain."),
    settings: Path | None = typer.Option(None, "--settings", help="JSON file of OptimizeConfig fields."),
    resume: int | None = typer.Option(None, "--resume", metavar="JOB_ID",
                                      help="Continue job JOB_ID from its last completed step."),
    context: str | None = ContextOption,
    server: str | None = RunOnServerOption,
    graph: str | None = GraphIdOption,
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Optimize a graph's knobs end to end; the job is checkpointed and can be resumed
    (on the server it ran on, unless --server names another)."""
    from optimas_lg.api import optimize_spec, resume_job

    on = server_of(server, graph)
    progress = printer(sys.stderr)  # progress on stderr keeps stdout for the result (pure JSON with --json)
    try:
        with sigterm_as_interrupt():
            if resume is not None:
                given = {"TARGET": target, "--data": data, "--metric": metric, "--val": val, "--test": test,
                         "--inputs": inputs, "--labels": labels, "--config": config, "--seed": seed,
                         "--max-iterations": max_iterations, "--max-system-runs": max_system_runs,
                         "--max-llm-tokens": max_llm_tokens, "--max-seconds": max_seconds, "--max-cost": max_cost,
                         "--patience": patience, "--settings": settings, "--context": context}
                extra = [name for name, value in given.items() if value is not None]
                if extra:
                    raise SettingsError(f"--resume {resume} continues the job with its own data and settings; "
                                        f"drop {', '.join(extra)} (or start a new job with them)")
                result = resume_job(resume, store, progress=progress, server=on)
            else:
                if not (target and data and metric):
                    raise OptimasError("give TARGET, --data and --metric (or --resume JOB_ID)")
                options = _settings(settings).with_options(
                    seed=seed, initial_knobs=knob_values(config), max_iterations=max_iterations,
                    max_system_runs=max_system_runs, max_llm_tokens=max_llm_tokens, max_seconds=max_seconds,
                    max_cost=max_cost, patience=patience)
                spec = JobSpec(target, metric, str(data), str(val) if val else None, str(test) if test else None,
                               inputs, labels, key_field=key, context=context_values(context) or None)
                result = optimize_spec(spec, options, store, progress=progress, server=on)
    except KeyboardInterrupt:
        job = _latest_interrupted(store)
        hint = f"; continue with `optimas-lg optimize --resume {job}`" if job is not None else ""
        err_console.print(f"[bold yellow]interrupted[/]{hint}", highlight=False)
        raise typer.Exit(130) from None
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return
    print_result(result)


def _settings(path: Path | None) -> OptimizeConfig:
    """The ``--settings`` file as a checked config (a one-line error on any problem)."""
    if path is None:
        return OptimizeConfig()
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SettingsError(f"--settings {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(f"--settings {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return OptimizeConfig.from_dict(data)


def _latest_interrupted(store: str | None) -> int | None:
    """The job a Ctrl-C just stopped (the newest one marked ``interrupted``)."""
    with Store(store) as s:
        return queries.latest_job(s, "optimize", "interrupted")


def print_result(result: Result) -> None:
    """Scores before/after, the knobs that changed and where the report is."""
    test = (f", test {result.test_before:.3f} → {result.test_after:.3f}"
            if result.test_after is not None and result.test_before is not None else "")
    console.print(f"\njob {result.job_id}: val {result.val_before:.3f} → {result.val_after:.3f}{test}"
                  f"  ({result.stop_reason})", highlight=False)
    changed = {k: v for k, v in result.best_knobs.items() if result.initial_knobs.get(k) != v}
    console.print(f"changed knobs: {json.dumps(changed, indent=2, ensure_ascii=False) if changed else 'none'}",
                  highlight=False)
    if result.report:
        console.print(f"report: {result.report}", highlight=False)

"""``optimas-lg optimize``: run (or resume) the optimizer loop with live progress."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from optimas_lg.cli.common import StoreOption, console, err_console, friendly_errors
from optimas_lg.errors import OptimasError
from optimas_lg.loop.config import JobSpec, OptimizeConfig


def progress_printer(out: Console) -> Callable[[str, dict[str, Any]], None]:
    """A progress callback printing one line per finished loop step to ``out``."""
    return lambda node, state: _progress(out, node, state)


def _progress(out: Console, node: str, state: dict[str, Any]) -> None:
    """One line per finished loop step: what happened, scores, budget spent."""
    spent = state.get("spent") or {}
    budget = (f"[dim]runs {spent.get('system_runs', 0):,} · tokens {spent.get('llm_tokens', 0):,} · "
              f"{spent.get('seconds', 0):.0f}s[/]")
    it = state.get("iteration", 0)
    if node == "baseline":
        test = state.get("test_before")
        msg = f"baseline  val {state['baseline_val']:.3f}" + (f"  test {test:.3f}" if test is not None else "")
    elif node in ("collect", "pairs", "train_lrf"):
        last = (state.get("history") or [{}])[-1]
        detail = {"collect": lambda h: f"{h.get('runs')} runs, mean {h.get('mean', 0):.3f}",
                  "pairs": lambda h: f"pairs per node {h.get('pairs')}",
                  "train_lrf": lambda h: "held-out ranking accuracy " + ", ".join(
                      f"{k} {v:.2f}" for k, v in (h.get("accuracy") or {}).items())}[node](last)
        msg = f"{node:<9} {detail}"
    elif node == "propose":
        p = state["proposal"]
        msg = (f"[{it}] {p['node']}.{p['knob']}: LRF {p['current_score']:.3f} → {p['proposed_score']:.3f}"
               + ("" if p["value"] else " (no change)"))
    elif node == "validate":
        d = state["decision"]
        mark = "[green]accepted[/]" if d["accepted"] else "[red]rejected[/]"
        msg = f"[{it}] val {d['val_current']:.3f} → {d['val_proposed']:.3f}  {mark}  ({d['reason']})"
    elif node == "final":
        test = state.get("test_after")
        msg = f"final     best val {state['current_val']:.3f}" + (f"  test {test:.3f}" if test is not None else "")
    else:
        return
    out.print(f"{msg}  {budget}", highlight=False)


@friendly_errors
def optimize(
    target: str | None = typer.Argument(None, help="Graph to optimize: path/file.py:builder or module:attr."),
    data: Path | None = typer.Option(None, "--data", help="Training data (.jsonl, .json or .csv)."),
    metric: str | None = typer.Option(None, "--metric", help="Metric: path/file.py:fn, fn(example, output) -> float."),
    val: Path | None = typer.Option(None, "--val", help="Validation data (default: a split of --data)."),
    test: Path | None = typer.Option(None, "--test", help="Test data, scored before and after."),
    inputs: list[str] | None = typer.Option(None, "--inputs", help="Row fields fed to the graph (default: all but labels)."),
    labels: list[str] | None = typer.Option(None, "--labels", help="Row fields the metric reads (e.g. answer)."),
    max_iterations: int | None = typer.Option(None, "--max-iterations", help="Optimization rounds."),
    max_runs: int | None = typer.Option(None, "--max-runs", help="Limit on system runs."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Limit on LLM tokens."),
    max_seconds: float | None = typer.Option(None, "--max-seconds", help="Limit on wall time."),
    patience: int | None = typer.Option(None, "--patience", help="Stop after this many rounds without a gain."),
    settings: Path | None = typer.Option(None, "--settings", help="JSON file of OptimizeConfig fields."),
    resume: int | None = typer.Option(None, "--resume", help="Continue job RUN_ID from its last completed step."),
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Optimize a graph's knobs end to end; the job is checkpointed and can be resumed."""
    from optimas_lg.api import optimize_spec, resume_job

    progress = progress_printer(err_console if as_json else console)  # keep stdout pure JSON
    if resume is not None:
        result = resume_job(resume, store, progress=progress)
    else:
        if not (target and data and metric):
            raise OptimasError("give TARGET, --data and --metric (or --resume JOB_ID)")
        config = OptimizeConfig.from_dict(json.loads(settings.read_text())) if settings else OptimizeConfig()
        limits = {"max_iterations": max_iterations, "max_system_runs": max_runs, "max_llm_tokens": max_tokens,
                  "max_seconds": max_seconds, "patience": patience}
        config.budget = dataclasses.replace(config.budget, **{k: v for k, v in limits.items() if v is not None})
        spec = JobSpec(target, metric, str(data), str(val) if val else None, str(test) if test else None,
                       list(inputs) if inputs else None, list(labels) if labels else None)
        result = optimize_spec(spec, config, store, progress=progress)
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return
    print_result(result)


def print_result(result: Any) -> None:
    """Scores before/after, the knobs that changed and where the report is."""
    test = (f", test {result.test_before:.3f} → {result.test_after:.3f}"
            if result.test_after is not None and result.test_before is not None else "")
    console.print(f"\njob {result.job_id}: val {result.val_before:.3f} → {result.val_after:.3f}{test}"
                  f"  ({result.stop_reason})", highlight=False)
    changed = {k: v for k, v in result.best_knobs.items() if result.initial_knobs.get(k) != v}
    console.print(f"changed knobs: {json.dumps(changed, indent=2) if changed else 'none'}", highlight=False)
    if result.report:
        console.print(f"report: {result.report}", highlight=False)

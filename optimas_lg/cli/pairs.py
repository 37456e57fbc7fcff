"""``optimas-lg pairs TARGET --data FILE --metric TARGET``: record runs, then build and store
preference pairs for the graph's nodes from Monte-Carlo rollouts (the LRF's training data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

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
from optimas_lg.data import field_names, load_examples
from optimas_lg.errors import DataError, KnobError
from optimas_lg.graph.system import System
from optimas_lg.graph.target import load_target
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.workspace import Workspace
from optimas_lg.lrf.collect import PairConfig
from optimas_lg.store import Store
from optimas_lg.store.lifecycle import job_guard, sigterm_as_interrupt

STAGE = "pairs"


@friendly_errors
def pairs(
    target: str = typer.Argument(..., help="The graph: path/to/file.py:attr or package.module:attr."),
    data: Path = typer.Option(..., "--data", help="Dataset file (.jsonl, .json or .csv)."),
    metric: str = typer.Option(..., "--metric", help="Metric (example, output) -> float, as path/file.py:attr."),
    inputs: list[str] | None = typer.Option(None, "--inputs", help="Row fields that form the graph input."),
    labels: list[str] | None = typer.Option(None, "--labels", help="Row fields the metric compares against."),
    key: str | None = typer.Option(None, "--key", help=KEY_HELP),
    config: str | None = typer.Option(None, "--config", help="Knob values (JSON object or file) the runs "
                                         "and rollouts use; unset knobs keep their defaults."),
    nodes: list[str] | None = typer.Option(None, "--nodes", help="Only these nodes (comma-separated; "
                                              "default: every node with knobs)."),
    samples: int = typer.Option(PairConfig.samples, "--samples", min=1,
                                help="Knob assignments (the current one first) run per recorded node call."),
    llm_samples: int = typer.Option(PairConfig.llm_samples, "--llm-samples", min=0,
                                    help="Extra candidates per call: the node at the current knobs with its LLM "
                                    "sampling (distinct outputs only; 0: off)."),
    temperature: float = typer.Option(PairConfig.temperature, "--temperature", min=0.0,
                                      help="Sampling temperature of the --llm-samples draws."),
    rollouts: int = typer.Option(PairConfig.rollouts, "--rollouts", min=1,
                                 help="Downstream runs scoring each candidate."),
    calls_per_node: int = typer.Option(PairConfig.calls_per_node, "--calls-per-node", min=1,
                                       help="Recorded calls replayed per node."),
    concurrency: int = typer.Option(PairConfig.concurrency, "--concurrency", min=1, help="Runs in flight at once."),
    seed: int = typer.Option(0, "--seed", help="Seed of call choice and knob sampling."),
    context: str | None = ContextOption,
    server: str | None = RunOnServerOption,
    graph: str | None = GraphIdOption,
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Collect preference pairs for the graph's nodes into a new job.

    The data runs once under one knob assignment; each node's recorded calls are then
    replayed with sampled knob values and, for LLM nodes, sampled at --temperature at the
    current values; every candidate is scored by rolling the graph out (greedy), and every
    two candidates of one input with a score gap kept as a pair.
    """
    on = server_of(server, graph)
    system = System.load(target, context=context_values(context))
    examples = load_examples(data, field_names(inputs), field_names(labels), key)
    if not examples:
        raise DataError(f"{data}: no examples to run")
    system.check_inputs(examples, field_names(inputs))
    knobs = system.knob_values(knob_values(config))
    spec = JobSpec(target, metric, str(data), inputs=field_names(inputs), labels=field_names(labels), key_field=key,
                   context=context_values(context) or None)
    settings = OptimizeConfig(pairs=PairConfig(samples, rollouts, calls_per_node=calls_per_node,
                                               concurrency=concurrency, seed=seed, llm_samples=llm_samples,
                                               temperature=temperature),
                              concurrency=concurrency, seed=seed)
    with Store(store) as s:
        ws = Workspace.create(system, load_target(metric), examples, [], [], s, settings, server=on)
        chosen = field_names(nodes) or ws.tunable_nodes()
        unknown = sorted(set(chosen) - set(ws.tunable_nodes()))
        if unknown:
            raise KnobError(f"--nodes {unknown}: not nodes with knobs; choose from {ws.tunable_nodes()}")
        meta: dict[str, Any] = {"spec": spec.to_dict(), "config": settings.to_dict(),
                                **({"server": on.to_dict()} if on else {})}
        ws.bind(s.create_job("pairs", target, meta))
        with job_guard(s, ws.job_id), sigterm_as_interrupt():
            summary = ws.run(examples, knobs, s.add_config(knobs, target, note="optimas-lg pairs"), purpose="collect")
            _, stats = ws.collect_pairs(knobs, settings.pairs, STAGE, nodes=chosen)
        job_id = ws.job_id
        result = {
            "job_id": job_id, "runs": len(summary.results), "failed_runs": summary.n_failed, "mean": summary.mean,
            "system_runs": len(summary.results) + stats.system_runs,
            "nodes": {node: {"calls": min(len(ws.node_calls(node)[0]), calls_per_node),
                             "candidates": stats.candidates[node], "llm_candidates": stats.llm_candidates[node],
                             "failed_candidates": stats.failed_candidates[node],
                             "pairs": stats.pairs[node]} for node in chosen}}
        s.finish_job(job_id, "done", {**meta, "knobs": knobs, "result": result})
    if as_json:
        print(json.dumps(result))
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    table = Table()
    for column in ("node", "calls used", "candidates", "LLM-sampled", "failed candidates", "pairs"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for node, row in result["nodes"].items():
        table.add_row(node, *(str(row[k]) for k in ("calls", "candidates", "llm_candidates", "failed_candidates",
                                                    "pairs")))
    console.print(table)
    mean = "n/a" if result["mean"] is None else f"{result['mean']:.3f}"
    if result["failed_runs"]:
        mean += f" over the {result['runs'] - result['failed_runs']} that finished"
    console.print(f"{result['runs']} recorded runs (mean {mean}, {result['failed_runs']} failed); "
                  f"{result['system_runs']} system runs in all; job {result['job_id']}", highlight=False)
    if not any(row["pairs"] for row in result["nodes"].values()):
        console.print("no pairs: every candidate of an input scored the same (or failed); try more "
                      "--samples, --llm-samples, --rollouts or examples", highlight=False)

"""``optimas-lg lrf train|eval JOB_ID``: train a local reward model on a job's stored pairs,
and measure how well it ranks held-out pairs against an LLM judge."""

from __future__ import annotations

import dataclasses
import json
import time

import typer

from optimas_lg.cli.common import StoreOption, console, friendly_errors
from optimas_lg.errors import OptimasError
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.lrf import evaluate_checkpoint, format_table
from optimas_lg.lrf.collect import stored_pairs
from optimas_lg.store import Store, queries
from optimas_lg.store import models as m

app = typer.Typer(help="Train and evaluate local reward functions (LRFs).", no_args_is_help=True)


def _job(store: Store, job_id: int) -> m.Job:
    job = store.job(job_id)
    if "spec" not in job.meta:
        raise OptimasError(f"job {job_id} was started from Python objects: it names no graph to build an LRF for")
    return job


@app.command("train")
@friendly_errors
def train(
    job_id: int = typer.Argument(..., help="Job whose stored pairs to train on (from `optimas-lg pairs`)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Passes over the training pairs."),
    eval_fraction: float = typer.Option(0.25, "--eval-fraction", min=0.0, max=1.0,
                                        help="Share of the examples whose pairs are held out."),
    backbone: str | None = typer.Option(None, "--backbone", help="HF model folder or name "
                                           "(default: the bundled all-MiniLM-L6-v2)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=8, help="Text budget per scored output."),
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train an LRF on a job's stored pairs.

    The pairs are split by example; the checkpoint is saved under the storage home and
    registered, and its ranking accuracy on the held-out examples' pairs printed.
    """
    from optimas_lg.loop.workspace import Workspace

    with Store(store) as s:
        job = _job(s, job_id)
        config = OptimizeConfig.from_dict(job.meta.get("config", {}))
        overrides = {"epochs": epochs, "backbone": backbone, "max_tokens": max_tokens}
        config.lrf = dataclasses.replace(config.lrf, progress=not as_json,
                                         **{k: v for k, v in overrides.items() if v is not None})
        config.lrf_eval_fraction = eval_fraction
        ws = Workspace.from_spec(JobSpec(**job.meta["spec"]), config, s, job_id)
        pairs = stored_pairs(s, job_id, types=ws.system.types)
        if not pairs:
            raise OptimasError(f"job {job_id} has no stored preference pairs; collect them with `optimas-lg pairs`")
        name = f"train{len(queries.lrf_checkpoints(s, job_id)) + 1}"
        start = time.perf_counter()
        event, held_out = ws.rewards.train(pairs, name)
        seconds = time.perf_counter() - start
    accuracy = event.accuracy
    result = {"job_id": job_id, "checkpoint_id": event.checkpoint_id, "path": ws.rewards.path,
              "backbone": config.lrf.resolved_backbone(), "train_pairs": len(pairs) - len(held_out),
              "eval_pairs": len(held_out), "eval_examples": len({p.example_key for p in held_out}),
              "seconds": seconds, "final_loss": event.train_loss, "accuracy": accuracy}
    if as_json:
        print(json.dumps(result))
        return
    console.print(f"checkpoint {event.checkpoint_id}: {result['path']}\ntrained on {result['train_pairs']} pairs in "
                  f"{seconds:.0f}s; held-out ranking accuracy on {len(held_out)} pairs of "
                  f"{result['eval_examples']} unseen examples:", highlight=False)
    console.print(format_table(held_out, accuracy), highlight=False, markup=False)


@app.command("eval")
@friendly_errors
def evaluate(
    job_id: int = typer.Argument(..., help="Job whose held-out pairs to rank."),
    checkpoint_id: int | None = typer.Option(None, "--checkpoint",
                                             help="LRF checkpoint id (default: the job's latest)."),
    judge: str | None = typer.Option(None, "--judge", help="Also ask this chat model, e.g. local/smollm2-135m."),
    goal: str | None = typer.Option(None, "--goal", help="The system's final goal, as told to the judge."),
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Rank a checkpoint's held-out pairs: the LRF against an LLM judge.

    Accuracy per node on the pairs of the examples held out from training; with --judge,
    the chat model is also asked which output of each pair is better for the final goal.
    """
    from optimas_lg.llm import chat_model

    model = chat_model(judge, temperature=0.0, max_tokens=8) if judge else None
    with Store(store) as s:
        result, table = evaluate_checkpoint(s, job_id, checkpoint_id, model, goal)
    if as_json:
        print(json.dumps(result))
        return
    console.print(f"job {job_id}, checkpoint {result['checkpoint_id']}: ranking accuracy on "
                  f"{result['eval_pairs']} held-out pairs", highlight=False)
    console.print(table, highlight=False, markup=False)

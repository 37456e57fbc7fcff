"""One cell (system, method, seed): optimize, score on val and test, store one JSON result.

A cell whose file exists with status ``done`` or ``not_applicable`` is skipped, so a killed
run resumes where it stopped; a cell that raised is stored with its error and tried again.
A loop cell goes further: its job lives in the cell's work folder until the cell is done,
and a killed or failed attempt's job is resumed from its last step (``methods.workdir``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.suite.counting import Runner, Tally, split_tokens
from bench.suite.methods import METHODS, NotApplicable, Task, workdir
from bench.suite.reuse import scored_before, source_digest
from bench.suite.systems import PROPOSER_MODEL, SuiteSystem

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "bench" / "suite"
FINISHED = ("done", "not_applicable")
PACKAGES = ("optimas-lg", "langgraph", "torch", "transformers", "optuna", "gepa", "dspy")


@dataclass(frozen=True)
class Cell:
    system: str
    method: str
    seed: int
    budget: int

    def path(self, out: Path) -> Path:
        return out / f"{self.system}.{self.method}.b{self.budget}.s{self.seed}.json"


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def is_done(cell: Cell, out: Path) -> bool:
    stored = load(cell.path(out))
    return stored is not None and stored.get("status") in FINISHED


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    try:
        found["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                      text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        found["git"] = None
    return found


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _scored(scores: list[float], examples: list[Any]) -> dict[str, Any]:
    return {"mean": sum(scores) / len(scores) if scores else None, "n": len(scores),
            "scores": {e.key: s for e, s in zip(examples, scores)}}


def run_cell(cell: Cell, suite_system: SuiteSystem, tally: Tally, out: Path) -> dict[str, Any]:
    """Optimize, then score the final config on val and test (counted apart from the budget)."""
    system, splits = suite_system.system(), suite_system.splits()
    runner = Runner(system, suite_system.metric)
    task = Task(suite_system, system, splits["train"], splits["val"], cell.budget, cell.seed, runner,
                workdir(cell.path(out).stem, out))
    row: dict[str, Any] = {"system": cell.system, "method": cell.method, "seed": cell.seed, "budget": cell.budget,
                           "sizes": {k: len(v) for k, v in splits.items()}, "proposer_model": PROPOSER_MODEL,
                           "task_models": list(suite_system.models), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "load_average_start": _load(), "versions": versions(),
                           "source_digest": source_digest(suite_system.module)}
    tokens0, start = tally.snapshot(), time.perf_counter()
    try:
        outcome = METHODS[cell.method](task)
    except NotApplicable as exc:
        row.update(status="not_applicable", reason=str(exc))
        shutil.rmtree(task.workdir, ignore_errors=True)
        return _write(row, cell, out)
    except Exception as exc:  # noqa: BLE001 - a method that fails is a result, stored and retried next time
        row.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-4000:],
                   wall_seconds=time.perf_counter() - start, tokens=split_tokens(tokens0, tally.snapshot(),
                                                                                   PROPOSER_MODEL))
        return _write(row, cell, out)
    row.update(wall_seconds=time.perf_counter() - start, system_runs=outcome.system_runs,
               within_budget=outcome.system_runs <= cell.budget,
               tokens=split_tokens(tokens0, tally.snapshot(), PROPOSER_MODEL), final_knobs=outcome.knobs,
               val_seen=outcome.val_seen, details=outcome.details)
    reused = None if outcome.scorer else scored_before(out, row, outcome.knobs)
    if reused:
        name, stored = reused
        row.update(val=stored["val"], test=stored["test"], scoring={"by": "graph", "runs": 0, "seconds": 0.0,
                                                                   "tokens": 0, "reused_from": name})
    else:
        row.update(_score(outcome, splits, runner, tally))
    row.update(status="done", finished=time.strftime("%Y-%m-%d %H:%M:%S"), load_average_end=_load())
    _write(row, cell, out)
    shutil.rmtree(task.workdir, ignore_errors=True)  # what a resume would need, no longer needed
    return row


def _score(outcome: Any, splits: dict[str, list[Any]], runner: Runner, tally: Tally) -> dict[str, Any]:
    """The final config's val and test scores, by the method's own scorer or by running the graph."""
    scored: dict[str, Any] = {}
    scoring0, start, runs0 = tally.snapshot(), time.perf_counter(), runner.runs
    for name in ("val", "test"):
        examples = splits[name]
        scores = outcome.scorer(examples) if outcome.scorer else runner.scores(examples, outcome.knobs)
        scored[name] = _scored(scores, examples)
    runs = sum(len(splits[n]) for n in ("val", "test")) if outcome.scorer else runner.runs - runs0
    scored["scoring"] = {"by": "method" if outcome.scorer else "graph", "runs": runs,
                         "seconds": time.perf_counter() - start,
                         "tokens": split_tokens(scoring0, tally.snapshot(), PROPOSER_MODEL)["system"]["total"]}
    return scored


def _write(row: dict[str, Any], cell: Cell, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    path = cell.path(out)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1, default=str) + "\n")
    tmp.replace(path)  # a kill mid-write never leaves a half file that counts as done
    return row

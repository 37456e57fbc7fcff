"""The method table: how each method optimizes a system within the budget.

A method gets a ``Task`` (the system, its train and val data, the budget, the seed, a
counting ``Runner``) and returns an ``Outcome``: the final knob values and what it spent.
It never sees the test split. Adding a method is one entry in ``METHODS`` (for a loop
variant, one ``LoopMethod`` with its settings).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.suite.counting import Runner
from bench.suite.systems import PROPOSER_MODEL, SuiteSystem
from optimas_lg.data import Example
from optimas_lg.graph.knobs import KnobSpec, defaults
from optimas_lg.graph.system import System

LOOP_KINDS = ["choice", "int", "float", "prompt", "demos"]
"""Knob kinds every loop method may tune: LoRA is left out for all (no peer tunes weights, and a
GRPO run takes minutes per proposal on this CPU). Demos are in, as MIPROv2 tunes its own."""


class NotApplicable(Exception):  # noqa: N818 - a cell outcome, not an error
    """The method cannot work on this system (no knobs of the kinds it tunes, no DSPy program)."""


@dataclass
class Task:
    """What a method is given for one cell."""

    suite_system: SuiteSystem
    system: System
    train: list[Example]
    val: list[Example]
    budget: int
    seed: int
    runner: Runner
    workdir: Path

    def knobs_of(self, kinds: set[str]) -> list[KnobSpec]:
        return [k for k in self.system.knobs.values() if k.kind in kinds]

    def defaults(self) -> dict[str, Any]:
        return defaults(self.system.knobs)


@dataclass
class Outcome:
    """A method's result: final knob values, its own best val score, system runs spent,
    method-specific details, and for a program that is not the graph its own scorer."""

    knobs: dict[str, Any]
    system_runs: int
    val_seen: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    scorer: Callable[[list[Example]], list[float]] | None = None


Method = Callable[[Task], Outcome]


def unoptimized(task: Task) -> Outcome:
    """The defaults; no run is spent before scoring."""
    return Outcome(task.defaults(), 0, details={"note": "the graph's default knobs"})


@dataclass(frozen=True)
class LoopMethod:
    """The optimas-lg loop with ``settings`` on top of its defaults (``OptimizeConfig``),
    the proposer LM and the tuned kinds fixed for every loop method alike."""

    settings: dict[str, Any] = field(default_factory=dict)

    def config(self, seed: int, system_settings: dict[str, Any] | None = None) -> Any:
        from optimas_lg.loop.config import OptimizeConfig

        return OptimizeConfig.from_dict({"seed": seed, "kinds": LOOP_KINDS, "write_report": False,
                                         "proposers": {"prompt": {"model": PROPOSER_MODEL}},
                                         **(system_settings or {}), **self.settings})

    def __call__(self, task: Task) -> Outcome:
        """Run the loop in the cell's store; a job an earlier attempt left there (killed with
        the session, or failed) is resumed from its last step instead of started over, so a
        cell longer than a session still ends."""
        from optimas_lg import optimize
        from optimas_lg.store import Store, queries

        store = Store(f"sqlite:///{task.workdir / 'optimas.db'}")
        earlier = queries.latest_job(store, "optimize")
        settings = self.config(task.seed, task.suite_system.loop_settings)
        result = optimize(task.system, task.train, task.suite_system.metric, valset=task.val, settings=settings,
                          store=store, resume=earlier, max_system_runs=task.budget, progress=False)
        runs, _ = queries.job_spend(store, result.job_id)
        decisions = [{"node": d.node, "changes": {k: [c.old, c.new] for k, c in d.changes.items()},
                      "accepted": d.accepted, "val": [d.val_current, d.val_proposed]} for d in result.decisions]
        details = {"settings": self.settings, "stop_reason": result.stop_reason, "decisions": decisions,
                   "val_before": result.val_before, "job_tokens": result.spent.tokens_by_source}
        if earlier is not None:  # wall time and tokens then cover the last attempt only; runs cover all
            details["resumed_job"] = earlier
        return Outcome(result.best_knobs, runs, result.val_after, details)


def _optuna(task: Task) -> Outcome:
    from bench.suite.optuna_method import optuna_search

    return optuna_search(task)


def _gepa(task: Task) -> Outcome:
    from bench.suite.gepa_method import gepa_search

    return gepa_search(task)


def _mipro(task: Task) -> Outcome:
    from bench.suite.mipro_method import mipro_search

    return mipro_search(task)


METHODS: dict[str, Method] = {
    "unoptimized": unoptimized,
    "optuna": _optuna,
    "optimas": LoopMethod(),
    "random": LoopMethod({"ranking": "random"}),
    "no-adapt": LoopMethod({"adapt_lrf": False}),
    "global-only": LoopMethod({"ranking": "global"}),
    "no-demos": LoopMethod({"kinds": [k for k in LOOP_KINDS if k != "demos"]}),
    "gepa": _gepa,
    "mipro": _mipro,
}
"""Method name -> how it optimizes."""

WRITES_PROMPTS = {"optimas", "random", "no-adapt", "global-only", "no-demos", "gepa", "mipro"}


def workdir(cell_name: str, out: Path) -> Path:
    """The cell's own folder in the storage home, kept until the cell is done: a loop
    method's store lives there, so a killed cell resumes its job. Keyed by the results
    folder too, so two result sets never share one."""
    from optimas_lg.home import subdir

    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:8]
    path = subdir("suite") / key / cell_name
    path.mkdir(parents=True, exist_ok=True)
    return path

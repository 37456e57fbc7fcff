"""Numeric knobs: an Optuna sampler (TPE by default) with the node's LRF as the cheap objective."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import optuna

from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.proposers.base import Proposer, Search
from optimas_lg.proposers.candidates import CandidateEvaluator
from optimas_lg.proposers.context import EvalConfig, ProposalContext, ProposalError


@dataclass
class NumericConfig(EvalConfig):
    """``n_trials`` counts the current value (always trial 0); repeated values cost nothing."""

    n_trials: int = 12

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")


class NumericProposer(Proposer):
    """Searches an ``IntRange`` or ``FloatRange`` (log scale and step honoured).

    ``sampler`` plugs in any Optuna sampler; the default is a ``TPESampler`` seeded
    from the context, built anew for each proposal so proposals do not share state.
    """

    kinds: ClassVar[tuple[KnobKind, ...]] = ("int", "float")
    config_class: ClassVar[type[EvalConfig]] = NumericConfig
    config: NumericConfig

    def __init__(self, config: NumericConfig | None = None, sampler: optuna.samplers.BaseSampler | None = None) -> None:
        super().__init__(config)
        self.sampler = sampler

    def search(self, ctx: ProposalContext, knob: KnobSpec, evaluator: CandidateEvaluator) -> Search:
        check_space(knob)
        sampler = self.sampler or optuna.samplers.TPESampler(
            seed=ctx.seed, n_startup_trials=max(1, min(5, self.config.n_trials // 2)))

        def objective(trial: optuna.Trial) -> float:
            value = suggest(trial, knob)
            evaluator.evaluate(value)
            return evaluator.mean(value)

        study = run_study(sampler, {knob.name: ctx.current[knob.name]}, objective, self.config.n_trials,
                          distinct=lambda: len(evaluator.candidates))
        return Search(evaluator.best(), {"sampler": type(sampler).__name__, "trials": len(study.trials)})


def check_space(knob: KnobSpec) -> None:
    """Refuse a range Optuna cannot sample (a log scale with a step other than 1)."""
    space = knob.knob
    if knob.kind in ("int", "float") and space.log and space.step is not None and not (
            knob.kind == "int" and space.step == 1):
        raise ProposalError(f"knob {knob.name!r}: Optuna cannot search a log scale with step {space.step}")


def suggest(trial: optuna.Trial, knob: KnobSpec) -> Any:
    """The trial's value of a numeric knob (log scale and step honoured) or a choice's option."""
    space = knob.knob
    if knob.kind == "int":
        return trial.suggest_int(knob.name, space.low, space.high, step=space.step, log=space.log)
    if knob.kind == "float":
        return trial.suggest_float(knob.name, space.low, space.high, step=space.step, log=space.log)
    options = list(space.options)  # by position: Optuna's categories must be plain JSON scalars
    return options[trial.suggest_categorical(knob.name, list(range(len(options))))]


def trial_params(knob: KnobSpec, value: Any) -> Any:
    """``value`` as ``suggest`` names it in a trial's params (a choice by its position)."""
    return list(knob.knob.options).index(value) if knob.kind == "choice" else value


REPEAT_ALLOWANCE = 4
"""A study may run this many times ``n_trials`` trials to find ``n_trials`` different assignments."""


def run_study(sampler: optuna.samplers.BaseSampler, first: dict[str, Any],
              objective: Callable[[optuna.Trial], float], n_trials: int,
              distinct: Callable[[], int] | None = None) -> optuna.Study:
    """Maximize ``objective``, the first trial at the params ``first`` (the current values).

    Without ``distinct`` the study runs ``n_trials`` trials. With it (how many different
    assignments have been scored so far) it runs until ``n_trials`` different ones are:
    an assignment suggested again is scored from cache at no cost, so it must not use up
    the search either. It stops after ``REPEAT_ALLOWANCE * n_trials`` trials, or earlier
    when a sampler has exhausted a finite space. Optuna logs every trial at INFO;
    proposals are recorded instead.
    """
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def enough(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if distinct is not None and distinct() >= n_trials:
            study.stop()

    try:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.enqueue_trial(first, skip_if_exists=True)
        study.optimize(objective, n_trials=n_trials if distinct is None else REPEAT_ALLOWANCE * n_trials,
                       callbacks=[enough])
    finally:
        optuna.logging.set_verbosity(verbosity)
    return study



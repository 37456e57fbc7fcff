"""Numeric knobs: an Optuna sampler (TPE by default) with the node's LRF as the cheap objective."""

from __future__ import annotations

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
        space = knob.knob
        if space.log and space.step is not None and not (knob.kind == "int" and space.step == 1):
            raise ProposalError(f"knob {knob.name!r}: Optuna cannot search a log scale with step {space.step}")
        sampler = self.sampler or optuna.samplers.TPESampler(
            seed=ctx.seed, n_startup_trials=max(1, min(5, self.config.n_trials // 2)))

        def objective(trial: optuna.Trial) -> float:
            value = self._suggest(trial, knob)
            evaluator.evaluate(value)
            return evaluator.mean(value)

        # Optuna logs every trial at INFO; the proposal is recorded as one event instead.
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.enqueue_trial({knob.name: ctx.current[knob.name]}, skip_if_exists=True)
            study.optimize(objective, n_trials=self.config.n_trials)
        finally:
            optuna.logging.set_verbosity(verbosity)
        return Search(evaluator.best(), {"sampler": type(sampler).__name__, "trials": len(study.trials)})

    @staticmethod
    def _suggest(trial: optuna.Trial, knob: KnobSpec) -> Any:
        space = knob.knob
        if knob.kind == "int":
            return trial.suggest_int(knob.name, space.low, space.high, step=space.step, log=space.log)
        return trial.suggest_float(knob.name, space.low, space.high, step=space.step, log=space.log)

"""Discrete choices and model selection: sample from a softmax over each option's LRF score."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import ClassVar, Literal

from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.proposers.base import Proposer, Search
from optimas_lg.proposers.candidates import CandidateEvaluator
from optimas_lg.proposers.cheapest import cheapest_within_noise
from optimas_lg.proposers.context import EvalConfig, ProposalContext


@dataclass
class ChoiceConfig(EvalConfig):
    """``softmax`` samples (the paper's exploration), ``argmax`` takes the best mean.

    ``temperature`` is in LRF score units: at 1.0 an option one point better is e times
    as likely.
    """

    strategy: Literal["softmax", "argmax"] = "softmax"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.strategy not in ("softmax", "argmax"):
            raise ValueError(f"strategy must be 'softmax' or 'argmax', got {self.strategy!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


def softmax(scores: list[float], temperature: float) -> list[float]:
    top = max(scores)
    weights = [math.exp((s - top) / temperature) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


class ChoiceProposer(Proposer):
    """Scores every option on the same inputs; an option that fails counts as a failure."""

    kinds: ClassVar[tuple[KnobKind, ...]] = ("choice",)
    config_class: ClassVar[type[EvalConfig]] = ChoiceConfig
    config: ChoiceConfig

    def search(self, ctx: ProposalContext, knob: KnobSpec, evaluator: CandidateEvaluator) -> Search:
        options = list(knob.knob.options)
        for option in options:
            evaluator.evaluate(option)
        cheaper = cheapest_within_noise(evaluator, options, ctx.value_cost)
        if cheaper is not None:
            return Search(cheaper, {"rule": "cheapest option within one stderr of the best LRF mean"})
        if self.config.strategy == "argmax":
            return Search(evaluator.best(), {"strategy": "argmax"})
        means = [evaluator.mean(option) for option in options]
        probs = softmax(means, self.config.temperature)
        value = random.Random(ctx.seed).choices(options, weights=probs)[0]
        return Search(value, {"strategy": "softmax", "temperature": self.config.temperature,
                              "probabilities": [[o, p] for o, p in zip(options, probs)]})

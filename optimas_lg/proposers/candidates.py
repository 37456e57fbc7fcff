"""Measure candidate knob values by the node's LRF on one fixed batch of recorded inputs."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from optimas_lg.graph.knobs import KnobSpec
from optimas_lg.proposers.context import Cost, EvalConfig, ProposalContext


@dataclass
class TriedValue:
    """One value's results per input: the node's output and its LRF score, or the error."""

    value: Any
    outputs: list[dict | None] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)


class CandidateEvaluator:
    """Runs the node under candidate values of one knob and scores the outputs.

    Every candidate sees the same inputs (a seeded sample of ``ctx.inputs``), so score
    differences come from the value, not from the draw. A value is evaluated once;
    asking again returns the cached result at no cost. With ``knob=None`` a candidate
    is an assignment ``{knob: value}`` of several knobs searched together.
    """

    def __init__(self, ctx: ProposalContext, knob: KnobSpec | None, config: EvalConfig) -> None:
        self.ctx = ctx
        self.knob = knob
        self.config = config
        self.cost = Cost()
        inputs = list(ctx.inputs)
        if len(inputs) > config.max_inputs:
            inputs = random.Random(ctx.seed).sample(inputs, config.max_inputs)
        self.inputs = inputs
        self.candidates: list[TriedValue] = []

    def get(self, value: Any) -> TriedValue | None:
        return next((c for c in self.candidates if c.value == value), None)

    def evaluate(self, value: Any) -> TriedValue:
        """Run the node with ``knob = value`` on every input and score what it returned."""
        cached = self.get(value)
        if cached is not None:
            return cached
        knobs = {**self.ctx.current, **(value if self.knob is None else {self.knob.name: value})}
        with ThreadPoolExecutor(max_workers=max(1, self.config.workers)) as pool:
            results = list(pool.map(lambda state: self._run(state, knobs), self.inputs))
        self.cost.node_runs += len(self.inputs)
        ok = [i for i, (out, _) in enumerate(results) if out is not None]
        scores: list[float | None] = [None] * len(self.inputs)
        if ok:
            found = self.ctx.score([(self.inputs[i], results[i][0]) for i in ok])
            self.cost.lrf_calls += len(ok)
            for i, s in zip(ok, found):
                scores[i] = float(s)
        candidate = TriedValue(value, [out for out, _ in results], scores, [err for _, err in results])
        self.candidates.append(candidate)
        return candidate

    def _run(self, state: dict, knobs: dict) -> tuple[dict | None, str | None]:
        try:
            return self.ctx.run_node(state, knobs), None
        except Exception as exc:  # a failing candidate is a result to score, not a crash
            return None, f"{type(exc).__name__}: {exc}"

    def floor(self) -> float:
        """The score of a failed input (see ``EvalConfig.failure_score``)."""
        if self.config.failure_score is not None:
            return self.config.failure_score
        seen = [s for c in self.candidates for s in c.scores if s is not None]
        if not seen:
            return 0.0
        spread = max(seen) - min(seen)
        return min(seen) - (spread if spread > 0 else 1.0)

    def mean(self, value: Any) -> float:
        """Mean LRF score of an evaluated value, failures at ``floor()``."""
        candidate = self.get(value)
        if candidate is None:
            raise KeyError(f"{value!r} was not evaluated")
        floor = self.floor()
        return sum(floor if s is None else s for s in candidate.scores) / len(candidate.scores)

    def best(self, allowed: Callable[[Any], bool] | None = None) -> Any:
        """The value with the highest mean among the ``allowed`` ones; the first evaluated
        (the current one) wins ties and stands when nothing else is allowed."""
        pool = [c for i, c in enumerate(self.candidates) if i == 0 or allowed is None or allowed(c.value)]
        return max(pool, key=lambda c: self.mean(c.value)).value

    def table(self) -> list[tuple[Any, float]]:
        return [(c.value, self.mean(c.value)) for c in self.candidates]

    def failures(self) -> dict[str, int]:
        """Failed inputs per candidate (by position in ``table()``), only where any failed."""
        return {str(i): n for i, c in enumerate(self.candidates) if (n := sum(e is not None for e in c.errors))}

"""The cheapest candidate within noise of the best, for jobs whose objective weighs cost.

The gate prices validation runs, but a proposer ranking with the node's LRF sees quality
only: between a large model and a cheaper one whose outputs it scores the same, it would
keep whichever it tried first. Under a cost weight the proposer instead takes the
cheapest candidate whose LRF scores are within one paired standard error of the best's,
so model selection can prefer the cheaper model that is just as good, and the gate then
confirms the saving on validation runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from optimas_lg.graph.knobs import Choice, KnobSpec
from optimas_lg.proposers.candidates import CandidateEvaluator

Price = Callable[[Any], float | None]


def cheapest_within_noise(evaluator: CandidateEvaluator, candidates: Sequence[Any], price: Price | None) -> Any | None:
    """The cheapest of ``candidates`` (each evaluated) whose LRF mean is within one paired
    standard error of the best candidate's, when every such candidate has a ``price`` and
    one is cheaper than the best; ``None`` otherwise (no price, or the best is the cheapest)."""
    if price is None:
        return None
    best = evaluator.best()
    floor = evaluator.floor()
    top = [floor if s is None else s for s in evaluator.get(best).scores]
    near = []
    for candidate in candidates:
        diffs = [t - (floor if s is None else s) for t, s in zip(top, evaluator.get(candidate).scores)]
        mean = sum(diffs) / len(diffs)
        stderr = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
        if mean <= stderr:
            near.append(candidate)
    costs = [price(candidate) for candidate in near]
    best_cost = price(best)
    if best_cost is None or None in costs:
        return None
    cheapest = min(range(len(near)), key=costs.__getitem__)
    return near[cheapest] if costs[cheapest] < best_cost else None


def assignment_price(knobs: Sequence[KnobSpec], value_cost: Price | None) -> Price | None:
    """The price of a joint assignment ``{knob: value}``: the sum of its priced choice knobs'
    values (a choice knob is priced when every option has a price, e.g. a model choice);
    ``None`` when the job does not weigh cost or no knob of ``knobs`` is priced."""
    if value_cost is None:
        return None
    priced = [k.name for k in knobs if isinstance(k.knob, Choice)
              and all(value_cost(option) is not None for option in k.knob.options)]
    if not priced:
        return None
    return lambda assignment: sum(value_cost(assignment[name]) or 0.0 for name in priced)

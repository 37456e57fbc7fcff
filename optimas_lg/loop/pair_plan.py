"""Which nodes the pairs steps collect for: only those whose LRF could earn trust.

The rule: **a node gets pairs only when its share of the pairs step's runs can serve
enough of its recorded calls that an LRF ranking the held-out ones at the planned
accuracy would be trusted** (``lrf.trust``: the Wilson lower bound over held-out examples
above 0.5 takes 4 examples ranked right by a perfect ranking, 13 at 0.78; the loop holds
out ``lrf_eval_fraction`` of the examples, so at 0.25 a node needs pairs from 14 or 51).
The plan counts every served call as giving a pair and a call as costing
``lrf.collect.planned_runs_per_call``, so at an accuracy of 1.0 a node it leaves out could
not have been trusted however well its LRF ranked. The adapt steps collect fresh pairs
only for the nodes the first plan kept: a head trained on no pair has nothing to adapt.

Why: proposers let an untrusted LRF pick nothing alone, they check its candidates on the
global metric (``proposers.trust``). Pairs that cannot reach trust buy no ranking the
loop will use; their runs go to the rounds instead. The shares are even, as in
``Workspace.collect_pairs``: the cheapest nodes are kept, as many as can each be paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optimas_lg.lrf.evaluate import examples_to_hold_out
from optimas_lg.lrf.trust import examples_for_trust


@dataclass(frozen=True)
class PairCost:
    """What pairs for ``node`` can cost: the step may serve recorded calls of ``calls``
    examples (``pairs.calls_per_node`` at most), at ``runs_per_call`` system runs each."""

    node: str
    calls: int
    runs_per_call: int

    def runs_for(self, examples: int) -> int:
        return examples * self.runs_per_call


@dataclass(frozen=True)
class PairPlan:
    """The nodes to collect pairs for, in the given order, and why each other node gets none."""

    nodes: list[str]
    left_out: dict[str, str]


def plan_pairs(costs: Sequence[PairCost], max_runs: int | None, accuracy: float, eval_fraction: float) -> PairPlan:
    """Keep the nodes whose LRF, ranking ``accuracy`` of the held-out ``eval_fraction`` of
    its examples right, could be trusted: each needs recorded calls of that many examples,
    and the even share of ``max_runs`` (``None``: no limit) among the kept nodes must pay
    for them."""
    held_out = examples_for_trust(accuracy)
    if held_out is None:
        raise ValueError(f"an LRF at {accuracy} accuracy, no better than chance, is never trusted: plan for more")
    needed = examples_to_hold_out(held_out, eval_fraction)
    target = f"an LRF at {accuracy:.2f} accuracy needs pairs from {needed}"
    left_out = {c.node: f"at most {c.calls} examples to serve, {target} to be trusted"
                for c in costs if c.calls < needed}
    able = sorted((c for c in costs if c.node not in left_out), key=lambda c: c.runs_for(needed))
    kept = len(able) if max_runs is None else max(
        k for k in range(len(able) + 1) if k == 0 or able[k - 1].runs_for(needed) <= max_runs // k)
    beside = f" beside {kept} other node{'s' * (kept > 1)}" if kept else ""
    for c in able[kept:]:
        left_out[c.node] = (f"{target} examples to be trusted, {c.runs_for(needed)} runs; the {max_runs} runs "
                            f"for pairs cannot pay for them{beside}")
    kept_nodes = {c.node for c in able[:kept]}
    return PairPlan([c.node for c in costs if c.node in kept_nodes], left_out)

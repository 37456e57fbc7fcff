"""Which nodes the first pairs step collects for: only those whose LRF could earn trust.

The rule: **a node gets pairs only when its share of the pairs step's runs can serve
enough of its recorded calls that even a perfect ranking of the held-out ones would be
trusted** (``lrf.trust``: the Wilson lower bound over held-out examples above 0.5 takes
4 examples ranked right; the loop holds out ``lrf_eval_fraction`` of the examples, so at
0.25 a node needs pairs from 14). The plan counts every served call as giving a pair and
a call as costing ``lrf.collect.planned_runs_per_call``, so a node it leaves out could
not have been trusted however well its LRF ranked.

Why: proposers let an untrusted LRF pick nothing alone, they check its candidates on the
global metric (``proposers.trust``). Pairs that cannot reach trust buy no ranking the
loop will use; their runs go to the rounds instead. The shares are even, as in
``Workspace.collect_pairs``: the cheapest nodes are kept, as many as can each be paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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


def plan_pairs(costs: Sequence[PairCost], max_runs: int | None, examples_needed: int) -> PairPlan:
    """Keep the nodes whose LRF could be trusted on pairs from ``examples_needed`` examples:
    each needs that many recorded calls, and the even share of ``max_runs`` (``None``: no
    limit) among the kept nodes must pay for them."""
    left_out = {c.node: f"at most {c.calls} examples to serve, a trusted LRF needs pairs from {examples_needed}"
                for c in costs if c.calls < examples_needed}
    able = sorted((c for c in costs if c.node not in left_out), key=lambda c: c.runs_for(examples_needed))
    kept = len(able) if max_runs is None else max(
        k for k in range(len(able) + 1) if k == 0 or able[k - 1].runs_for(examples_needed) <= max_runs // k)
    beside = f" beside {kept} other node{'s' * (kept > 1)}" if kept else ""
    for c in able[kept:]:
        left_out[c.node] = (f"a trusted LRF needs pairs from {examples_needed} examples, {c.runs_for(examples_needed)} "
                            f"runs; the {max_runs} runs for pairs cannot pay for them{beside}")
    kept_nodes = {c.node for c in able[:kept]}
    return PairPlan([c.node for c in costs if c.node in kept_nodes], left_out)

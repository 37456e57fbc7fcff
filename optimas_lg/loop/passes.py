"""Passes over the graph's nodes: the loop gives every reached node a round before any
node a second one, and within a pass takes first the node its evidence says can gain most."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Literal, get_args

NodeOrder = Literal["headroom", "random"]
"""How a round's node is chosen among those a pass has not visited (``next_node``)."""
NODE_ORDERS: tuple[str, ...] = get_args(NodeOrder)


def unvisited_in_pass(visited: list[str], reached: list[str]) -> list[str]:
    """The ``reached`` nodes not yet visited in the current pass, given the nodes of past
    rounds in order. A pass ends once every reached node has had a round, so no node gets
    a second round while another waits for its first (a uniform draw with replacement
    gave STaRK's `dense` two of four rounds while `relational` and `rerank` had none)."""
    seen: set[str] = set()
    for node in visited:
        seen.add(node)
        if seen >= set(reached):
            seen = set()
    return [n for n in reached if n not in seen]


def searched_before_a_change(decisions: list[tuple[str, bool]]) -> dict[str, str]:
    """Nodes whose latest round came before the latest accepted change to another node,
    each with that node, given ``(node, accepted)`` for every past round in order: what
    their search measured ran under a config that has changed since."""
    last_round = {node: i for i, (node, _) in enumerate(decisions)}
    accepted = [i for i, (_, kept) in enumerate(decisions) if kept]
    if not accepted:
        return {}
    changed = decisions[accepted[-1]][0]
    return {node: changed for node, i in last_round.items() if i < accepted[-1] and node != changed}


def next_node(unvisited: list[str], headroom: Mapping[str, float], order: NodeOrder,
              rng: random.Random, stale: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The node for the next round among ``unvisited`` (non-empty), and why.

    ``order="random"`` is the paper's rule: uniformly at random. ``order="headroom"`` is
    coordinate descent's Gauss-Southwell rule with the evidence the pairs already paid
    for: ``headroom`` is a node's mean gain of its best candidate output over its current
    one per training input (``lrf.gains_over_current``), and the node with the largest
    positive headroom goes first (equal ones at random). Then a ``stale`` node (its last
    search ran before another node's accepted change, ``searched_before_a_change``), as
    coordinate descent revisits a coordinate once the others moved; then a node without a
    measurement (no pairs were collected for it), before the nodes measured at zero:
    evidence of a gain beats outdated evidence and no evidence, which beat evidence of none.
    """
    if order == "headroom":
        gaining = {n: headroom[n] for n in unvisited if headroom.get(n, 0.0) > 0}
        if gaining:
            best = max(gaining.values())
            node = rng.choice([n for n, h in gaining.items() if h == best])
            others = ", ".join(f"{n} {h:+.3f}" for n, h in sorted(gaining.items(), key=lambda t: -t[1]) if n != node)
            return node, f"largest measured headroom {best:+.3f} a training input" + (f" (then {others})"
                                                                                       if others else "")
        outdated = [n for n in unvisited if n in (stale or {})]
        if outdated:
            node = rng.choice(outdated)
            return node, f"no measured headroom; last searched before the accepted change to {stale[node]}"
        unmeasured = [n for n in unvisited if n not in headroom]
        if unmeasured:
            return rng.choice(unmeasured), "no measured headroom: at random among the nodes without pairs"
        return rng.choice(unvisited), "no node's candidates beat its current output: at random"
    return rng.choice(unvisited), "at random"

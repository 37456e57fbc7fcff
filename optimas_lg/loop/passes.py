"""Passes over the graph's nodes: the loop gives every reached node a round before any
node a second one, and a pass whose rounds all proposed nothing at no cost ends the job."""

from __future__ import annotations

from collections.abc import Sequence


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


def idle_pass(idle_rounds: Sequence[str], reached: Sequence[str]) -> bool:
    """Whether the latest rounds that proposed no change and spent no system run (their
    nodes, ``idle_rounds``) gave every ``reached`` node a round. Such rounds leave the
    LRF, the data and the knobs as they were and move no budget limit on runs or money,
    so a job bounded only by those went round forever (HotpotQA, ``patience=None``, whose
    untrusted LRF kept the current demos every round)."""
    return bool(reached) and set(idle_rounds) >= set(reached)

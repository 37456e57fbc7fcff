"""Preference pairs for the local reward functions, built from scored candidate outputs.

A candidate is one output a node produced (or was made to produce) for one recorded input,
scored by rolling the rest of the graph out from it and applying the global metric. Every
two candidates of the same input whose scores differ by a real gap make one pair: the
paper's code kept a pair only when the later-indexed candidate won, losing half the signal.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from optimas_lg.errors import LRFError


def message_fields(message: BaseMessage) -> dict[str, Any]:
    """What a message says (role, name, text, tool calls), without the ids and metadata
    that differ between two runs saying the same thing."""
    fields: dict[str, Any] = {"type": message.type, "content": message.content}
    if message.name:
        fields["name"] = message.name
    if getattr(message, "tool_calls", None):
        fields["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in message.tool_calls]
    return fields


def _plain(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        return message_fields(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def canonical_json(value: Any) -> str:
    """A stable text form of a state value, used to compare inputs and outputs (two
    messages that say the same thing compare equal)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_plain)


@dataclass
class Candidate:
    """One output of ``node`` for one input, with the global scores of its rollouts."""

    node: str
    example_key: str
    inputs: dict
    output: dict
    knobs: dict = field(default_factory=dict)
    rollout_scores: list[float] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Monte Carlo estimate of the global reward: the mean over rollouts."""
        if not self.rollout_scores:
            raise LRFError(f"candidate of node {self.node!r} for example {self.example_key!r} has no rollout scores")
        bad = [s for s in self.rollout_scores if not math.isfinite(s)]
        if bad:
            raise LRFError(
                f"candidate of node {self.node!r} for example {self.example_key!r} has non-finite scores {bad}: "
                "a failing metric must be fixed or recorded as a real score, not as inf/nan"
            )
        return sum(self.rollout_scores) / len(self.rollout_scores)


@dataclass
class PreferencePair:
    """For ``inputs`` at ``node``, ``chosen`` led to a higher global score than ``rejected``."""

    node: str
    example_key: str
    inputs: dict
    chosen: dict
    rejected: dict
    chosen_score: float
    rejected_score: float
    weight: float = 1.0

    @property
    def margin(self) -> float:
        return self.chosen_score - self.rejected_score

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreferencePair:
        try:
            return cls(**data)
        except TypeError as exc:
            raise LRFError(f"not a preference pair: {exc}") from exc


def _merge_identical(group: list[Candidate]) -> list[Candidate]:
    """Candidates with the same output are one candidate: pool their rollout scores."""
    merged: dict[str, Candidate] = {}
    for cand in group:
        key = canonical_json(cand.output)
        if key in merged:
            merged[key].rollout_scores.extend(cand.rollout_scores)
        else:
            merged[key] = Candidate(cand.node, cand.example_key, cand.inputs, cand.output, {},
                                    list(cand.rollout_scores))
    return list(merged.values())


def _by_input(candidates: list[Candidate]) -> list[list[Candidate]]:
    """The candidates grouped by what they answer: the same node, example and inputs."""
    groups: dict[tuple[str, str, str], list[Candidate]] = {}
    for cand in candidates:
        groups.setdefault((cand.node, cand.example_key, canonical_json(cand.inputs)), []).append(cand)
    return list(groups.values())


def _scored_groups(candidates: list[Candidate]) -> list[list[tuple[Candidate, float]]]:
    """Candidates of the same (node, example, inputs), identical outputs merged, with their scores."""
    return [[(cand, cand.score) for cand in _merge_identical(group)] for group in _by_input(candidates)]


def gains_over_current(candidates: list[Candidate], current: dict[str, Any]) -> list[float]:
    """Per input whose output under the ``current`` knob values was scored: how much the
    best of its candidates outscored that output (0 when none did). Their mean is the
    node's measured headroom: what the global metric gains, per input, if the node's
    output could be changed for the better (the loop orders its rounds by it)."""
    gains = []
    for group in _by_input(candidates):
        base = next((c for c in group if c.knobs == current), None)
        if base is not None:
            gains.append(max(c.score for c in group) - base.score)
    return gains


def count_ties(candidates: list[Candidate], min_margin: float = 0.0) -> int:
    """How many two distinct outputs of one input scored within ``min_margin`` (or the same):
    the comparisons ``build_pairs`` drops for want of a gap."""
    return sum(abs(a - b) <= min_margin for group in _scored_groups(candidates)
               for (_, a), (_, b) in itertools.combinations(group, 2))


def build_pairs(candidates: list[Candidate], min_margin: float = 0.0, normalize: bool = False) -> list[PreferencePair]:
    """Every two candidates of the same (node, example, inputs) whose scores differ by more
    than ``min_margin`` make one pair, the higher-scored output chosen, weighted by the gap.

    ``normalize`` rescales the weights of each node to mean 1, so a weighted loss keeps the
    scale of an unweighted one whatever the metric's range.
    """
    if min_margin < 0:
        raise LRFError(f"min_margin must be >= 0, got {min_margin}")
    pairs: list[PreferencePair] = []
    for scored in _scored_groups(candidates):
        for (a, score_a), (b, score_b) in itertools.combinations(scored, 2):
            gap = abs(score_a - score_b)
            if gap <= min_margin or gap == 0:
                continue
            if score_b > score_a:
                (a, score_a), (b, score_b) = (b, score_b), (a, score_a)
            pairs.append(PreferencePair(a.node, a.example_key, a.inputs, a.output, b.output, score_a, score_b, gap))
    if normalize:
        for node in {p.node for p in pairs}:
            node_pairs = [p for p in pairs if p.node == node]
            mean = sum(p.weight for p in node_pairs) / len(node_pairs)
            for p in node_pairs:
                p.weight /= mean
    return pairs

"""How far a node's local reward function can be trusted to pick a winner alone.

The rule: a node's LRF is **trusted when the lower bound of the 95% Wilson score
interval of its held-out ranking accuracy is above 0.5** (a coin's accuracy on a pair),
**counting held-out examples, not pairs**. A head with no held-out pair is not trusted.

Why examples: the pairs of one example share its input and rollouts, so they agree
far more often than independent trials would; six pairs from two questions are closer
to two observations than to six. Taking the number of distinct examples as ``n`` is the
conservative end (every example's pairs fully correlated). The Wilson interval, not the
normal one, because ``n`` is often a few dozen and accuracy near 0.5 or 1, where the
normal interval is too narrow; a small ``n`` widens it, so 0.70 on 10 examples ([0.40,
0.89]) is not trusted while 0.70 on 100 ([0.60, 0.78]) is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""
CHANCE = 0.5
"""Ranking accuracy of a coin on a preference pair."""


def wilson_interval(accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``accuracy`` observed on ``n`` trials
    (``(0, 1)`` when ``n`` is 0: nothing is known)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    denom = 1 + z * z / n
    centre = (accuracy + z * z / (2 * n)) / denom
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def examples_for_trust(accuracy: float = 1.0) -> int | None:
    """The fewest held-out examples on which an LRF ranking ``accuracy`` of them right is
    trusted (4 for a perfect ranking; ``None`` when no number is: ``accuracy`` at or below chance)."""
    if accuracy <= CHANCE:
        return None
    n = 1
    while wilson_interval(accuracy, n)[0] <= CHANCE:
        n += 1
    return n


@dataclass(frozen=True)
class LRFTrust:
    """One node's LRF accuracy on ``n`` pairs of ``examples`` examples it was not trained
    on, with the 95% Wilson interval ``[low, high]`` over the examples (``accuracy`` is
    ``None`` when there was no such pair; ``trained`` is false when the node's head saw
    no pair at all, so it ranks nothing)."""

    node: str
    accuracy: float | None
    n: int
    low: float
    high: float
    examples: int
    trained: bool = True

    @classmethod
    def measure(cls, node: str, accuracy: float | None, n: int, examples: int) -> LRFTrust:
        """The trust record of ``accuracy`` measured on ``n`` held-out pairs drawn from
        ``examples`` distinct examples."""
        if accuracy is None or n <= 0 or examples <= 0:
            return cls(node, None, 0, 0.0, 1.0, 0)
        if examples > n:
            raise ValueError(f"{examples} examples cannot give only {n} pairs")
        low, high = wilson_interval(accuracy, examples)
        return cls(node, accuracy, n, low, high, examples)

    @classmethod
    def untrained(cls, node: str) -> LRFTrust:
        """The record of a node no pair was collected for: its head learned nothing."""
        return cls(node, None, 0, 0.0, 1.0, 0, trained=False)

    @property
    def trusted(self) -> bool:
        """Significantly better than chance: the interval's lower bound is above 0.5."""
        return self.examples > 0 and self.low > CHANCE

    def describe(self) -> str:
        """``0.82 [0.61, 0.93] 40 pairs / 20 examples``, or that there is no held-out pair."""
        if not self.trained:
            return "no pairs for this node"
        if self.accuracy is None:
            return "no held-out pairs"
        return f"{self.accuracy:.2f} [{self.low:.2f}, {self.high:.2f}] {self.n} pairs / {self.examples} examples"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "trusted": self.trusted}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LRFTrust:
        return cls(data["node"], data["accuracy"], data["n"], data["low"], data["high"], data["examples"],
                   data.get("trained", True))

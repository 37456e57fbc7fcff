"""A bounded per-node memory of older preference pairs.

adapt() mixes these into every fresh mini-batch so that catching up with a changed system
does not make the LRF forget what it knew about the rest of it (the paper's history buffer).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Literal

from optimas_lg.errors import LRFError
from optimas_lg.lrf.pairs import PreferencePair


class ReplayBuffer:
    """At most ``capacity`` pairs per node: a uniform sample of all seen (``reservoir``)
    or the most recent ones (``fifo``)."""

    def __init__(self, capacity: int, policy: Literal["reservoir", "fifo"] = "reservoir", seed: int = 0) -> None:
        if capacity < 0:
            raise LRFError(f"replay capacity must be >= 0, got {capacity}")
        if policy not in ("reservoir", "fifo"):
            raise LRFError(f"replay policy must be 'reservoir' or 'fifo', got {policy!r}")
        self.capacity = capacity
        self.policy = policy
        self._rng = random.Random(seed)
        self._pairs: dict[str, deque[PreferencePair]] = {}
        self._seen: dict[str, int] = {}

    def add(self, pairs: list[PreferencePair]) -> None:
        for pair in pairs:
            kept = self._pairs.setdefault(pair.node, deque(maxlen=self.capacity if self.policy == "fifo" else None))
            seen = self._seen[pair.node] = self._seen.get(pair.node, 0) + 1
            if self.policy == "fifo" or len(kept) < self.capacity:
                kept.append(pair)
            elif (slot := self._rng.randrange(seen)) < self.capacity:
                kept[slot] = pair

    def sample(self, k: int) -> list[PreferencePair]:
        """Up to ``k`` pairs drawn without replacement across all nodes."""
        pool = [pair for kept in self._pairs.values() for pair in kept]
        return self._rng.sample(pool, min(k, len(pool)))

    def counts(self) -> dict[str, int]:
        return {node: len(kept) for node, kept in self._pairs.items()}

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._pairs.values())

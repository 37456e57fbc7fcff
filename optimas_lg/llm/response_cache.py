"""Answers to deterministic chat jobs, kept so that asking again costs no decoding.

An optimization asks the same questions many times: the validation runs of a change to
the last node repeat every call of the nodes before it, a candidate equal to the current
output is rolled out like the recorded run it copies, the final test runs repeat the
baseline's calls of the nodes nobody changed. A job whose every choice is greedy
(temperature 0) or seeded is a function of the model, the adapter's files, the prompt's
tokens and the sampling parameters, so its answer is kept under a digest of exactly
those, and an unseeded sampled job is never kept. The least recently used answers go
first once ``max_entries`` are kept.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Generic, TypeVar

from optimas_lg.llm.generation import SamplingParams

Result = TypeVar("Result")


@dataclass
class CacheStats:
    """Lookups answered from the cache (``hits``) and decoded (``misses``)."""

    hits: int = 0
    misses: int = 0
    entries: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "entries": self.entries}


def job_key(model: str, adapter_version: str, prompt: Sequence[int], params: Sequence[SamplingParams]) -> bytes | None:
    """The digest a job's answer is kept under, or ``None`` when the answer is a fresh draw
    (a choice sampled at a temperature above 0 without a seed)."""
    if any(p.temperature > 0 and p.seed is None for p in params):
        return None
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{model}\0{adapter_version}\0{[astuple(p) for p in params]!r}\0".encode())
    digest.update(array("q", prompt).tobytes())
    return digest.digest()


class ResponseCache(Generic[Result]):
    """A thread-safe LRU map from ``job_key`` digests to answers; ``max_entries=0`` keeps none."""

    def __init__(self, max_entries: int):
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._answers: OrderedDict[bytes, Result] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes | None) -> Result | None:
        """The kept answer for ``key`` (counted as a hit), or ``None`` (a miss)."""
        if key is None or not self.max_entries:
            return None
        with self._lock:
            found = self._answers.get(key)
            if found is None:
                self.stats.misses += 1
                return None
            self._answers.move_to_end(key)
            self.stats.hits += 1
            return found

    def put(self, key: bytes | None, answer: Result) -> None:
        if key is None or not self.max_entries:
            return
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
            self.stats.entries = len(self._answers)

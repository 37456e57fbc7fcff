"""The example's metrics: MRR of the first gold entity in the ranking (the score the
optimizer maximizes, as in STaRK) and hit@k (reported beside it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimas_lg.data import Example


def _ranking(output: Any) -> list[str]:
    ranking = output.get("ranking") if isinstance(output, Mapping) else output
    return list(ranking) if isinstance(ranking, (list, tuple)) else []


def reciprocal_rank(ranking: list[str], gold: set[str]) -> float:
    """1 / the rank of the first gold entity; 0 when none is ranked."""
    return next((1 / rank for rank, name in enumerate(ranking, 1) if name in gold), 0.0)


def hit_at_k(example: Example, output: Any, k: int = 5) -> float:
    """1.0 when a gold entity is among the first ``k`` of ``output["ranking"]``."""
    return float(bool(set(_ranking(output)[:k]) & set(example["answers"])))


def metric(example: Example, output: Any) -> float:
    """Reciprocal rank of ``output["ranking"]`` (or of ``output`` itself, a list) against the gold answers."""
    return reciprocal_rank(_ranking(output), set(example["answers"]))


def show(example: Example, output: Any) -> str:
    """One line for ``python -m examples.stark --show``: the gold entities and the top 3 ranked."""
    return f"gold={example['answers']!r}\ttop3={_ranking(output)[:3]!r}"

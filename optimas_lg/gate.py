"""The validation gate: accept a proposed config only when it beats the current one on
the validation set by more than noise.

The rule (paired, per example): with ``d_i = proposed_i - current_i`` over the same
validation examples (each score averaged over the repeats), accept when

    mean(d) >= min_gain   and   mean(d) > z * stderr(d)

``stderr(d) = std(d, ddof=1) / sqrt(n)``. The defaults (``min_gain=0.01``, ``z=1.0``)
reject changes inside one standard error of the paired difference, which is what a
strict ``>`` on a handful of examples (the paper code's rule) lets through. An example
that failed under either config counts as a score of 0 for that config, so a change
that breaks runs cannot pass as progress.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence


@dataclass(frozen=True)
class GateConfig:
    min_gain: float = 0.01
    z: float = 1.0
    min_examples: int = 10


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    mean_current: float
    mean_proposed: float
    mean_diff: float
    stderr: float
    n: int
    rule: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _clean(scores: Sequence[float | None]) -> list[float]:
    return [0.0 if s is None else float(s) for s in scores]


def paired_gate(current: Sequence[float | None], proposed: Sequence[float | None],
                config: GateConfig = GateConfig()) -> GateDecision:
    """Decide on per-example validation scores of the current and proposed configs
    (same examples, same order; ``None`` marks a failed run)."""
    if len(current) != len(proposed):
        raise ValueError(f"paired gate needs the same examples: {len(current)} vs {len(proposed)} scores")
    cur, new = _clean(current), _clean(proposed)
    n = len(cur)
    rule = f"mean(d) >= {config.min_gain} and mean(d) > {config.z} * stderr(d), n >= {config.min_examples}"
    if n == 0:
        return GateDecision(False, 0.0, 0.0, 0.0, 0.0, 0, rule, "no validation examples")
    diffs = [b - a for a, b in zip(cur, new)]
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    stderr = math.sqrt(var / n)
    mean_cur, mean_new = sum(cur) / n, sum(new) / n
    if n < config.min_examples:
        accepted, reason = False, f"only {n} validation examples (< {config.min_examples})"
    elif mean < config.min_gain:
        accepted, reason = False, f"gain {mean:+.4f} below min_gain {config.min_gain}"
    elif mean <= config.z * stderr:
        accepted, reason = False, f"gain {mean:+.4f} within noise ({config.z} x stderr {stderr:.4f})"
    else:
        accepted, reason = True, f"gain {mean:+.4f} > {config.z} x stderr {stderr:.4f}"
    return GateDecision(accepted, mean_cur, mean_new, mean, stderr, n, rule, reason)

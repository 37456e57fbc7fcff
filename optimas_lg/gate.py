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

A change of several knobs that passes is then pruned (``prune_change``): each changed
knob is reverted in turn, and the revert is kept unless the gate says the knob's new
value beats it. A knob that rode along with a useful one (a prompt rewrite proposed in
the same round as a better answer format, say) does not get in without evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class GateConfig:
    """The acceptance rule's thresholds; ``prune`` makes every knob of an accepted
    multi-knob change pass the same rule on its own (one validation pass per knob)."""

    min_gain: float = 0.01
    z: float = 1.0
    min_examples: int = 10
    prune: bool = True


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


@dataclass(frozen=True)
class PruneStep:
    """One knob of an accepted change, tested against reverting it alone."""

    knob: str
    kept: bool
    decision: GateDecision  # the knob's new value (proposed) vs its old one (current)


Scores = Sequence[float | None]


def prune_change(previous: dict[str, Any], proposed: dict[str, Any], proposed_scores: Scores,
                 evaluate: Callable[[dict[str, Any]], Scores], config: GateConfig = GateConfig(),
                 ) -> tuple[dict[str, Any], list[float | None], list[PruneStep]]:
    """Backward elimination over an accepted change.

    ``previous`` holds the old values of the changed knobs (in the order to test them),
    ``proposed`` the whole accepted config and ``proposed_scores`` its validation scores;
    ``evaluate(values)`` scores a config on the same examples. Each changed knob is
    reverted in turn and stays reverted unless the gate accepts its new value over the
    old one; the last changed knob left is not tested (the change as a whole passed).
    Returns the pruned config, its scores and the steps taken.
    """
    values, scores, steps = dict(proposed), list(proposed_scores), []
    for knob in previous:
        if sum(values[k] != previous[k] for k in previous) <= 1:
            break
        reverted = {**values, knob: previous[knob]}
        reverted_scores = list(evaluate(reverted))
        decision = paired_gate(reverted_scores, scores, config)
        steps.append(PruneStep(knob, decision.accepted, decision))
        if not decision.accepted:
            values, scores = reverted, reverted_scores
    return values, scores, steps

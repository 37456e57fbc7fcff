"""The validation gate: accept a proposed config only when it beats the current one on
the validation set by more than noise.

The rule (paired, per example): with ``d_i = proposed_i - current_i`` over the same
validation examples (each score averaged over the repeats), accept when

    mean(d) >= min_gain   and   mean(d) > z * stderr(d)

``stderr(d) = std(d, ddof=1) / sqrt(n)``; ``>= min_gain`` allows float rounding
(``ROUNDING``: a mean difference of 0.01 on paper can come out as 0.00999... in floats).
The defaults (``min_gain=0.01``, ``z=1.0``)
reject changes inside one standard error of the paired difference, which is what a
strict ``>`` on a handful of examples (the paper code's rule) lets through. A change
that breaks runs never passes as progress: a proposal that fails on an example the
current config ran is rejected whatever it gains elsewhere (with a metric that goes
below 0, a failure scored 0 looked like the best outcome), and in the means a failed
run counts as the lowest score of the comparison, 0 for a metric that never goes below.

A round that changed several knobs is validated unit by unit (``validate_knobwise``): a
unit is the knobs one search chose together (a joint search over a node's numeric and
choice knobs is one unit; every prompt, demo set or LoRA adapter is its own). Each unit
must pass the rule against the config before it, on top of the units accepted before it.
A knob that rides along with a useful one (a prompt rewrite proposed in the same round
as a better answer format, say) neither gets in without evidence nor sinks the useful
one, and knobs found together are not split into tries that each cost a validation and
that none of them passes alone. Units that only help together get one joint try when
none passes alone.

Each try first runs on the first ``futility_at`` share of the validation examples (half,
by default; first in the job's seeded order, so a sorted set does not bias the look) and
stops there, rejected, when the proposal is not ahead on them (``mean(d) <= 0``) or breaks
a run the current config ran (``interim_look``). A rejected proposal, the common case,
then costs half a validation, and those runs go to further rounds. A real gain is seldom
not ahead after half the examples: this is the non-binding futility boundary at zero of
group-sequential trials, which gives up little power. A gain carried by a few examples
that all fall in the second part is lost; ``futility_at=None`` runs every example. The
look needs at least ``min_examples`` examples in its share, or it is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

ROUNDING = 1e-9
"""How far below ``min_gain`` a gain may fall by float arithmetic alone and still meet it."""


@dataclass(frozen=True)
class GateConfig:
    """The acceptance rule's thresholds."""

    min_gain: float = 0.01
    z: float = 1.0
    min_examples: int = 10
    futility_at: float | None = 0.5

    def __post_init__(self) -> None:
        if self.futility_at is not None and not 0 < self.futility_at < 1:
            raise ValueError(f"gate.futility_at must be between 0 and 1 (a share of the validation examples) "
                             f"or null, not {self.futility_at}")


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


def _paired(current: Sequence[float | None], proposed: Sequence[float | None]) -> tuple[list[float], list[float], int]:
    """Both score lists with a failure at the comparison's lowest score (0 for a metric that
    never goes below), and how many examples the proposal broke (failed where current ran)."""
    floor = min([0.0, *(float(s) for s in (*current, *proposed) if s is not None)])
    cur, new = ([floor if s is None else float(s) for s in scores] for scores in (current, proposed))
    return cur, new, sum(p is None and c is not None for c, p in zip(current, proposed))


def _stats(cur: Sequence[float], new: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the paired differences ``new - cur``."""
    n = len(cur)
    diffs = [b - a for a, b in zip(cur, new)]
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var / n)


def _rule(config: GateConfig) -> str:
    return f"mean(d) >= {config.min_gain} and mean(d) > {config.z} * stderr(d), n >= {config.min_examples}"


def paired_gate(current: Sequence[float | None], proposed: Sequence[float | None],
                config: GateConfig = GateConfig()) -> GateDecision:
    """Decide on per-example validation scores of the current and proposed configs
    (same examples, same order; ``None`` marks a failed run)."""
    if len(current) != len(proposed):
        raise ValueError(f"paired gate needs the same examples: {len(current)} vs {len(proposed)} scores")
    cur, new, broken = _paired(current, proposed)
    n = len(cur)
    rule = _rule(config)
    if n == 0:
        return GateDecision(False, 0.0, 0.0, 0.0, 0.0, 0, rule, "no validation examples")
    mean, stderr = _stats(cur, new)
    mean_cur, mean_new = sum(cur) / n, sum(new) / n
    if n < config.min_examples:
        accepted, reason = False, f"only {n} validation examples (< {config.min_examples})"
    elif broken:
        accepted, reason = False, f"fails on {broken} of {n} validation examples the current config ran"
    elif mean < config.min_gain - ROUNDING:
        accepted, reason = False, f"gain {_apart(mean, config.min_gain)} below min_gain {config.min_gain}"
    elif mean <= config.z * stderr:
        accepted, reason = False, f"gain {mean:+.4f} within noise ({config.z} x stderr {stderr:.4f})"
    else:
        accepted, reason = True, f"gain {mean:+.4f} > {config.z} x stderr {stderr:.4f}"
    return GateDecision(accepted, mean_cur, mean_new, mean, stderr, n, rule, reason)


def _apart(value: float, bound: float) -> str:
    """``value`` to 4 decimals, or to as many more as it takes not to read as ``bound``
    (a gain of 0.00998 shows as +0.00998 below a min_gain of 0.01, not as +0.0100)."""
    for digits in range(4, 10):
        shown = f"{value:+.{digits}f}"
        if float(shown) != bound:
            return shown
    return shown


def interim_size(n: int, config: GateConfig = GateConfig()) -> int | None:
    """How many of ``n`` validation examples a try runs before its interim look (``None``: no look)."""
    if config.futility_at is None:
        return None
    k = math.ceil(n * config.futility_at)
    return k if config.min_examples <= k < n else None


def interim_look(current: Sequence[float | None], proposed: Sequence[float | None], of: int,
                 config: GateConfig = GateConfig()) -> GateDecision | None:
    """The verdict on a try after the first part of its ``of`` examples (``current`` and
    ``proposed``: both configs' scores on that part): a rejection when the proposal is not
    ahead or breaks a run there, else ``None`` (run the rest)."""
    k = len(proposed)
    cur, new, broken = _paired(current, proposed)
    mean, stderr = _stats(cur, new)
    if broken:
        reason = f"fails on {broken} of the first {k} validation examples the current config ran"
    elif mean <= 0:
        reason = f"not ahead after {k} of {of} validation examples (gain {mean:+.4f})"
    else:
        return None
    return GateDecision(False, sum(cur) / k, sum(new) / k, mean, stderr, k, _rule(config),
                        f"{reason}; the other {of - k} not run")


def check_score(current: Sequence[float | None], proposed: Sequence[float | None]) -> float:
    """A proposal's score in a training check (``proposed``) beside the current config's on
    the same examples (``current``), under the gate's rule: failures count at the lowest
    score of the two, and a proposal that fails where the current config ran scores below
    it, by the share of examples it broke, since the gate would reject it whatever it gains."""
    cur, new, broken = _paired(current, proposed)
    mean = sum(new) / len(new) if new else 0.0
    if not broken:
        return mean
    return min(mean, sum(cur) / len(cur)) - broken / len(new)


@dataclass(frozen=True)
class KnobStep:
    """One validation of a round: ``knobs`` changed on top of what was accepted before."""

    knobs: tuple[str, ...]
    accepted: bool
    decision: GateDecision


Scores = Sequence[float | None]


def validate_knobwise(current: dict[str, Any], current_scores: Scores, changes: dict[str, Any],
                      evaluate: Callable[[dict[str, Any], tuple[str, ...], list[int]], Scores],
                      config: GateConfig = GateConfig(),
                      units: Sequence[tuple[str, ...]] | None = None,
                      order: Sequence[int] | None = None,
                      ) -> tuple[dict[str, Any], list[float | None], list[KnobStep]]:
    """Try each unit of changed knobs in order (``changes``: knob -> new value; ``units``:
    groups of knobs chosen together, by default each knob alone) on top of the ones accepted
    so far, keeping it when the gate accepts it over the config before it; when several
    units changed and none passed alone, try them all together once. Knobs one joint search
    chose are one unit: they were found together and often only pay off together.

    ``evaluate(values, knobs, indices)`` scores a config on the validation examples of
    ``current_scores`` at ``indices``. Each try runs them in ``order`` (default: as given)
    and looks after its first part (``interim_look``). Returns the accepted config, its
    scores (in the examples' order) and every step.
    """
    values, scores, steps = dict(current), list(current_scores), []
    n = len(current_scores)
    order = list(order) if order is not None else list(range(n))
    looked_at = interim_size(n, config) or n
    first, rest = order[:looked_at], order[looked_at:]

    def attempt(knobs: tuple[str, ...]) -> None:
        nonlocal values, scores
        trial = {**values, **{k: changes[k] for k in knobs}}
        got = dict(zip(first, evaluate(trial, knobs, first)))
        decision = interim_look([scores[i] for i in first], [got[i] for i in first], n, config) if rest else None
        if decision is None:
            if rest:
                got.update(zip(rest, evaluate(trial, knobs, rest)))
            decision = paired_gate(scores, [got[i] for i in range(n)], config)
        steps.append(KnobStep(knobs, decision.accepted, decision))
        if decision.accepted:
            values, scores = trial, [got[i] for i in range(n)]

    units = list(units) if units is not None else [(knob,) for knob in changes]
    for unit in units:
        attempt(unit)
    if len(units) > 1 and not any(step.accepted for step in steps):
        attempt(tuple(changes))  # units that may only help together
    return values, scores, steps

"""Who picks the winner among LRF-ranked candidates: the LRF alone only when it has earned it.

A node's LRF is trusted when its held-out ranking accuracy is significantly above chance
(``lrf.trust``). When it is not, the LRF only shortlists: its ``check_top`` best
candidates and the current value are each run through ``ProposalContext.global_check``
(the global metric on a training mini-batch) and the best of those wins, the current
value winning ties. The check spends system runs, so it stays within
``ProposalContext.system_runs_left()``; when fewer than two checks are affordable (or the
context has no global check) the LRF picks alone and the decision says why, unless it
scored every candidate alike (a node with no trained head does): then its pick would only
be the tie-break that keeps the current value, and the round would test nothing, so a
seeded random other candidate goes to the validation gate instead (``tied_draw``).
With ``ProposalContext.global_only`` (the ``ranking="global"`` ablation) there is no LRF:
every candidate goes to the check.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optimas_lg.proposers.context import ProposalContext


@dataclass(frozen=True)
class Verdict:
    """The winner, the decision in words (recorded with the proposal, shown in the progress
    line and the report), and the global checks made with the system runs they cost."""

    value: Any
    decision: str
    checked: list[tuple[Any, float]] = field(default_factory=list)
    system_runs: int = 0

    def details(self, ctx: ProposalContext) -> dict[str, Any]:
        """What goes into the proposal's ``details``."""
        out: dict[str, Any] = {"trust": ctx.trust.to_json() if ctx.trust else None, "trust_decision": self.decision}
        if self.checked:
            out["trust_checked"] = [[value, score] for value, score in self.checked]
        return out


MIN_CHECKS = 2
"""A search on the global metric compares: it is worth its runs only when it can check the
current value and at least one other."""


def checks_affordable(runs_left: int | None, runs_per_check: int) -> int | None:
    """How many global checks of ``runs_per_check`` system runs ``runs_left`` pays for
    (``None``: no limit)."""
    if runs_left is None or runs_per_check <= 0:
        return None
    return runs_left // runs_per_check


def affordable_checks(ctx: ProposalContext) -> tuple[int | None, str]:
    """How many global checks the context allows (``None``: no limit), and why not when 0 or 1."""
    if ctx.global_check is None:
        return 0, "no global check in this context"
    left = ctx.system_runs_left()
    n = checks_affordable(left, ctx.global_runs)
    return n, "" if n is None else f"{left} system runs left for this round, a check costs {ctx.global_runs}"


def untrusted_head(ctx: ProposalContext) -> str:
    """Why the LRF does not pick alone, as the head of the recorded decision."""
    if ctx.global_only:
        return "no LRF (ranking=global)"
    assert ctx.trust is not None
    if not ctx.trust.trained:
        return f"no LRF ({ctx.trust.describe()})"
    return f"LRF not trusted ({ctx.trust.describe()})"


def unchecked(ctx: ProposalContext) -> str:
    """What happens when no global check is affordable: the LRF picks, or with no LRF the
    current value stays."""
    return "the current value stays" if ctx.global_only else "the LRF picked alone"


def tied_draw(ctx: ProposalContext, ranked: list[tuple[Any, float]],
              assign: Callable[[Any], dict[str, Any]]) -> tuple[Any, str] | None:
    """When an LRF that has not earned trust scored every candidate of ``ranked`` (the
    current value first) alike, a seeded random other candidate the gate has not already
    judged (``ctx.judged``: rejected, or replaced by an accepted change), and the decision
    in words; ``None`` when the scores differ or there is no other candidate."""
    if len(ranked) < 2 or len({score for _, score in ranked}) > 1:
        return None
    current = ranked[0][0]
    others = [v for v, _ in ranked[1:] if v != current and not ctx.judged_change(assign(v))]
    if not others:
        return None
    value = random.Random(f"{ctx.seed}:{ctx.iteration}:{ctx.node}:tied").choice(others)
    scored = (f"nothing ranks the {len(ranked)} candidates" if ctx.without_lrf
              else f"the LRF scored all {len(ranked)} candidates alike")
    return value, f"{scored}, so a random one goes to the gate"


def drawn_instead(ctx: ProposalContext, decision: str, why: str) -> str:
    """``decision``, which ended in ``unchecked(ctx)``, saying what ``tied_draw`` did instead."""
    return decision.removesuffix(unchecked(ctx)) + why


def _alone(ctx: ProposalContext, ranked: list[tuple[Any, float]], choice: Any,
           assign: Callable[[Any], dict[str, Any]], decision: str) -> Verdict:
    """The LRF picks alone (``decision`` says so), unless it tied every candidate (``tied_draw``)."""
    drawn = tied_draw(ctx, ranked, assign)
    if drawn is None:
        return Verdict(choice, decision)
    value, why = drawn
    return Verdict(value, drawn_instead(ctx, decision, why))


def checks_candidates(ctx: ProposalContext) -> bool:
    """Whether a global check, not the LRF alone, may pick among the candidates."""
    return ctx.global_only or (ctx.trust is not None and not ctx.trust.trusted)


def pick(ctx: ProposalContext, ranked: list[tuple[Any, float]], choice: Any,
         assign: Callable[[Any], dict[str, Any]], top: int) -> Verdict:
    """The winner among ``ranked`` (``(value, LRF mean)``, the current value first) where the
    LRF chose ``choice``; ``assign`` turns a value into the full knob assignment to check
    (all of them when ``ctx.global_only``)."""
    trust = ctx.trust
    if not checks_candidates(ctx):
        return Verdict(choice, f"LRF trusted: {trust.describe()}" if trust else "")
    if ctx.global_only:
        top = len(ranked)
    elif top == 0:
        return Verdict(choice, f"{untrusted_head(ctx)}: check_top is 0, the LRF picked alone")
    current = ranked[0][0]
    best_first = sorted(ranked, key=lambda t: -t[1])  # stable: earlier values win ties
    others = [v for v, _ in best_first if v != current and not ctx.rejected_change(assign(v))][:top]
    if not others:
        return Verdict(choice, f"{untrusted_head(ctx)}: no other candidate to check")
    n, why = affordable_checks(ctx)
    if n is not None and n < MIN_CHECKS:
        head = f"{untrusted_head(ctx)}: {why}; {unchecked(ctx)}"
        return Verdict(current, head) if ctx.global_only else _alone(ctx, ranked, choice, assign, head)
    shortlist = [current, *others][: n if n is not None else None]
    check = ctx.global_check
    assert check is not None  # affordable_checks() allowed none without it
    checked = [(value, float(check(assign(value)))) for value in shortlist]
    winner = max(checked, key=lambda t: t[1])[0]  # max keeps the first (the current value) on ties
    what = f"all {len(shortlist) - 1} candidates" if ctx.global_only else f"top {len(shortlist) - 1}"
    decision = f"{untrusted_head(ctx)}: {what} checked on the train metric"
    if winner != choice and not ctx.without_lrf:
        decision += ", overruling the LRF's pick"
    return Verdict(winner, decision, checked, len(shortlist) * ctx.global_runs)

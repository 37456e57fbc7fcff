"""Progress of a running optimization: one line per finished loop step.

``optimas_lg.optimize`` prints these by default, the CLI prints the same lines, and any
``progress(node, state)`` callable can take their place.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from optimas_lg.loop.budget import Spent
from optimas_lg.loop.records import (
    Collected,
    Decision,
    LRFEvent,
    NodePicked,
    NodeProposal,
    NodesSkipped,
    PairsCollected,
    entries,
)
from optimas_lg.loop.state import LoopState
from optimas_lg.pricing import usd

ProgressFn = Callable[[str, LoopState], None]
"""Called after each loop step with the step's name and the loop state after it."""


def step_line(node: str, state: LoopState) -> str | None:
    """What a finished step did, its scores and the budget spent so far (``None``: nothing to say)."""
    spent = Spent.from_json(state.get("spent") or {})
    money = f" · {usd(spent.cost)}" if spent.cost else ""
    budget = f"runs {spent.system_runs:,} · tokens {spent.llm_tokens:,}{money} · {spent.seconds:.0f}s"
    it = state.get("iteration", 0)
    history = state.get("history")
    if node == "baseline":
        test = state.get("test_before")
        msg = f"baseline  val {state['baseline_val']:.3f}" + (f"  test {test:.3f}" if test is not None else "")
        scores = state.get("current_val_scores") or []
        failed = sum(s is None for s in scores)
        if failed:
            first = state.get("baseline_error")
            which = f"; the first: {first}" if first else ""
            msg += f"  ({failed} of {len(scores)} val runs failed, each scored 0{which})"
    elif node == "collect":
        c = entries(history, Collected)[-1]
        mean = "-" if c.mean is None else f"{c.mean:.3f}"
        msg = f"collect   {c.runs} runs ({c.failed} failed), mean {mean}"
        if c.failed:
            msg += f" over those that ran; the first failure: {c.first_error}"
    elif node == "pairs":
        found = entries(history, PairsCollected)
        msg = f"pairs     per node {found[-1].pairs}" if found else "pairs     none (this ranking uses no LRF)"
        skipped = sum(found[-1].skipped_calls.values()) if found else 0
        if skipped:
            msg += f"; {skipped} recorded calls got no candidates (the run budget for pairs was spent)"
        if found and found[-1].without_lrf:
            msg += f"; none for {', '.join(found[-1].without_lrf)} (no knob they read is ranked with the LRF)"
        if found and found[-1].left_out:
            nodes_by_reason: dict[str, list[str]] = {}
            for left, why in found[-1].left_out.items():
                nodes_by_reason.setdefault(why, []).append(left)
            msg += "".join(f"; none for {', '.join(nodes)}: {why}" for why, nodes in nodes_by_reason.items())
    elif node == "train_lrf" and not entries(history, LRFEvent):
        return None
    elif node == "train_lrf":
        event = entries(history, LRFEvent)[-1]
        weak = event.at_or_below_chance()
        n_of = {**(event.n_eval_by_node or {}), "__overall__": event.n_eval_pairs}
        examples = event.n_eval_examples_by_node or {}
        def measured(k: str, v: float) -> str:
            return (f"{k.strip('_')} {v:.2f}" + _sample_size(n_of.get(k), examples.get(k))
                    + (" (at or below chance)" if k in weak else ""))

        shown = [measured(k, v) for k, v in event.accuracy.items() if not k.startswith("__")]
        shown += [f"{node} - (n=0: no held-out pair)" for node in event.train_accuracy or {}
                  if node not in event.accuracy and not node.startswith("__")]  # trained, never judged
        shown += [measured(k, v) for k, v in event.accuracy.items() if k.startswith("__")]  # overall last
        msg = "train_lrf held-out ranking accuracy " + (", ".join(shown) or "- (no held-out pairs)")
    elif node == "pick_node" and state.get("stop_reason"):
        return None  # no round starts; the final line follows with the reason
    elif node == "pick_node":
        picked = [e for e in entries(history, NodePicked) if e.iteration == it]
        skipped = [e for e in entries(history, NodesSkipped) if e.iteration == it]
        msg = f"[{it}] {state.get('node')} picked" + (f": {picked[-1].reason}" if picked else "")
        if skipped:
            msg += f"; skipped {', '.join(skipped[-1].nodes)} ({skipped[-1].reason})"
    elif node == "propose":
        p = NodeProposal.from_json(state["proposal"] or {})
        score_name = "train metric" if p.objective == "global" else "LRF"
        scores = ("" if p.current_score is None or p.proposed_score is None
                  else f": {score_name} {p.current_score:.3f} → {p.proposed_score:.3f}")
        why: dict[str, list[str]] = {}
        for knob, reason in p.skipped.items():
            why.setdefault(reason.split(":")[0], []).append(knob)
        groups = "; ".join(f"{reason}: {', '.join(knobs)}" for reason, knobs in why.items())
        skipped = f" (skipped, {groups})" if why else ""
        trust = f"  ({p.trust})" if p.trust else ""
        msg = f"[{it}] {p.node}.{p.label}{scores}" + ("" if p.changes else " (no change)") + skipped + trust
    elif node == "validate":
        d = Decision.from_json(state["decision"] or {})
        mark = "accepted" if d.accepted else "rejected"
        part = f" on the first {d.n}" if d.n < len(state["current_val_scores"]) else ""  # stopped at the interim look
        scores = f"val {d.val_current:.3f} → {d.val_proposed:.3f}{part}" if d.n else "not validated"
        msg = f"[{it}] {scores}  {mark}  ({d.reason})"
    elif node == "final":
        test = state.get("test_after")
        msg = f"final     best val {state['current_val']:.3f}" + (f"  test {test:.3f}" if test is not None else "")
    else:
        return None
    return f"{msg}  [{budget}]"


def _sample_size(pairs: int | None, examples: int | None) -> str:
    """`` (n=14 pairs / 5 examples)``: what a held-out accuracy was measured on."""
    if pairs is None:
        return ""
    return f" (n={pairs} pairs / {examples} examples)" if examples is not None else f" (n={pairs})"


def printer(out: TextIO | None = None) -> ProgressFn:
    """A progress callback printing ``step_line`` to ``out`` (default: stderr, so stdout
    stays free for results)."""

    def progress(node: str, state: LoopState) -> None:
        line = step_line(node, state)
        if line is not None:
            print(line, file=out or sys.stderr, flush=True)

    return progress


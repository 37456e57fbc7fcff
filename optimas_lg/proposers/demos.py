"""Few-shot demonstrations: bootstrap demo sets from the node's own well-scored training
calls (as DSPy's BootstrapFewShot does) and rank them, with the empty set, by the node's LRF.

The recorded training examples are split in two (seeded, by example): demos come only
from one part and sets are scored on the other, so a demo is never scored on its own
input. The chosen set still has to pass the loop's validation gate like any change.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
from dataclasses import dataclass
from typing import Any, ClassVar

from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.proposers.base import Proposer, Search
from optimas_lg.proposers.candidates import CandidateEvaluator
from optimas_lg.proposers.context import EvalConfig, Proposal, ProposalContext, ProposalError, RecordedCall


@dataclass
class DemosConfig(EvalConfig):
    """``sets`` candidate demo sets (sizes cycling 1..k) besides the empty one, drawn from
    calls whose run scored at least ``min_score`` (default: the median of the node's
    recorded runs, and above the lowest when scores differ); ``holdout`` of the recorded
    examples are kept out of the demo pool to score the sets on."""

    sets: int = 6
    min_score: float | None = None
    holdout: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sets < 1:
            raise ValueError(f"sets must be at least 1, got {self.sets}")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")


def as_demo(call: RecordedCall, reads: list[str]) -> dict[str, Any]:
    """A recorded call as a demo: the keys the node read, what it returned, and where it came from."""
    shown = {k: v for k, v in call.input.items() if k in reads} if reads else dict(call.input)
    return {"input": shown, "output": call.output,
            "source": {"call": call.call_id, "run": call.run_id, "example": call.example_key,
                       "score": call.run_score}}


class DemosProposer(Proposer):
    """Proposes the demo set (possibly empty) whose outputs the node's LRF ranks highest."""

    kinds: ClassVar[tuple[KnobKind, ...]] = ("demos",)
    config_class: ClassVar[type[EvalConfig]] = DemosConfig
    config: DemosConfig

    def propose(self, ctx: ProposalContext, knob: KnobSpec) -> Proposal:
        """Split the recorded calls into the demo pool and the inputs the sets are scored on."""
        if len(ctx.calls) != len(ctx.inputs):
            raise ProposalError(f"node {ctx.node!r}: demos need the recorded call behind every input "
                                f"({len(ctx.calls)} calls for {len(ctx.inputs)} inputs)")
        keys = sorted({c.example_key for c in ctx.calls})
        random.Random(f"{ctx.seed}:demos:{ctx.node}").shuffle(keys)
        scored_on = set(keys[: max(1, round(len(keys) * self.config.holdout))])
        pool = [c for c in ctx.calls if c.example_key not in scored_on]
        inputs = [x for x, c in zip(ctx.inputs, ctx.calls) if c.example_key in scored_on]
        return super().propose(dataclasses.replace(ctx, inputs=inputs, calls=pool), knob)

    def search(self, ctx: ProposalContext, knob: KnobSpec, evaluator: CandidateEvaluator) -> Search:
        good = self.well_scored(ctx.calls)
        evaluator.evaluate([])
        for demos in self.candidate_sets(ctx, knob, good):
            evaluator.evaluate(demos)
        return Search(evaluator.best(), {"pool": len(good), "sets": len(evaluator.candidates)})

    def well_scored(self, calls: list[RecordedCall]) -> list[RecordedCall]:
        """The calls whose run scored well, best first."""
        scores = [c.run_score for c in calls if c.run_score is not None]
        if not scores:
            return []
        threshold = self.config.min_score if self.config.min_score is not None else statistics.median(scores)
        lowest, spread = min(scores), max(scores) > min(scores)
        good = [c for c in calls if c.run_score is not None and c.run_score >= threshold
                and (c.run_score > lowest or not spread)]
        return sorted(good, key=lambda c: -(c.run_score or 0.0))

    def candidate_sets(self, ctx: ProposalContext, knob: KnobSpec, good: list[RecordedCall]) -> list[list[dict]]:
        """Up to ``sets`` distinct demo sets of sizes 1..k (seeded draws from ``good``)."""
        rng = random.Random(f"{ctx.seed}:demo-sets:{ctx.node}:{ctx.iteration}")
        found: list[list[dict]] = []
        for i in range(self.config.sets):
            size = min(1 + i % knob.knob.k, len(good))
            if size == 0:
                break
            demos = [as_demo(c, ctx.reads) for c in rng.sample(good, size)]
            if demos not in found:
                found.append(demos)
        return found

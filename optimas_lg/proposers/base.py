"""The proposer base class: checks, timing and recording shared by every knob kind."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from optimas_lg.graph.knobs import KnobKind, KnobSpec
from optimas_lg.proposers.candidates import CandidateEvaluator
from optimas_lg.proposers.context import ALL_NODES, EvalConfig, Proposal, ProposalContext, ProposalError
from optimas_lg.proposers.cost import RunCost
from optimas_lg.proposers.trusted import pick


@dataclass
class Search:
    """What a proposer's search found: the value to propose and kind-specific evidence."""

    value: Any
    details: dict[str, Any] = field(default_factory=dict)


class Proposer(ABC):
    """One optimizer per knob kind, pluggable like Optuna's samplers.

    ``propose`` evaluates the current value first, lets ``search`` try others on the
    same inputs, and records the whole table so a report can say why a value won; when
    the node's LRF is not trusted, a global check of its top candidates picks the winner
    (``proposers.trusted``). A
    subclass declares the ``kinds`` it handles and its ``config_class`` (an
    ``EvalConfig`` dataclass, so JSON settings can configure it) and implements ``search``.
    """

    kinds: ClassVar[tuple[KnobKind, ...]]
    config_class: ClassVar[type[EvalConfig]] = EvalConfig
    trains_on_lrf: ClassVar[bool] = False
    """Whether ``search`` learns from the LRF's scores (as GRPO's reward): with no LRF it
    would learn from ties, so the loop does not run it."""

    def __init__(self, config: EvalConfig | None = None) -> None:
        self.config = config or self.config_class()

    def propose(self, ctx: ProposalContext, knob: KnobSpec) -> Proposal:
        """Search a better value of ``knob`` for ``ctx.node``; the current value may win."""
        self._check(ctx, knob)
        start = time.perf_counter()
        evaluator = CandidateEvaluator(ctx, knob, self.config)
        previous = ctx.current[knob.name]
        evaluator.evaluate(previous)
        found = self.search(ctx, knob, evaluator)
        evaluator.evaluate(found.value)  # a no-op when search already did, as it usually has
        if ctx.rejected_change({knob.name: found.value}):  # the gate said no under this LRF and data
            value = evaluator.best(lambda v: not ctx.rejected_change({knob.name: v}))
            found = Search(value, {**found.details, "rejected_before": found.value})
        if (ctx.trust is not None or ctx.global_only) and "global_check" not in found.details:  # (LoRA: own check)
            verdict = pick(ctx, evaluator.table(), found.value, lambda v: {**ctx.current, knob.name: v},
                           self.config.check_top)
            evaluator.cost.system_runs += verdict.system_runs
            found = Search(verdict.value, {**found.details, **verdict.details(ctx)})
        evaluator.cost.seconds = time.perf_counter() - start
        if ctx.charge_tokens is not None:
            ctx.charge_tokens(evaluator.cost.llm_tokens)
        unscored = ctx.lrf_ties(found.details)
        proposal = Proposal(
            node=ctx.node,
            knob=knob.name,
            kind=knob.kind,
            previous=previous,
            value=found.value,
            values={**ctx.current, knob.name: found.value},
            current_score=None if unscored else evaluator.mean(previous),
            proposed_score=None if unscored else evaluator.mean(found.value),
            cost=evaluator.cost,
            candidates=evaluator.table(),
            details={**found.details, "inputs": len(evaluator.inputs), "failures": evaluator.failures()},
        )
        return self.record(ctx, proposal)

    def uses_lrf(self, cost: RunCost | None) -> bool:
        """Whether this proposer ranks candidates with the node's LRF when a system run
        costs ``cost``; the loop keeps adapting the LRF only while a live knob's proposer does."""
        return True

    def propose_all(self, ctx: ProposalContext, knobs: list[KnobSpec]) -> list[Proposal]:
        """Proposals for several knobs of ``ctx.node``: one knob after another, each starting
        from the values the previous ones chose (``ctx.current`` moves along). A proposer
        that searches knobs together overrides this (``JointProposer``)."""
        proposals = []
        for knob in knobs:
            proposal = self.propose(ctx, knob)
            ctx.current = dict(proposal.values)
            proposals.append(proposal)
        return proposals

    def record(self, ctx: ProposalContext, proposal: Proposal) -> Proposal:
        """Store ``proposal`` as an optimizer event when the context names a store and job."""
        if ctx.store is not None and ctx.job_id is not None:
            ctx.store.add_event(ctx.job_id, "proposal", proposal.to_json(), node=ctx.node,
                                iteration=ctx.iteration)
        return proposal

    @abstractmethod
    def search(self, ctx: ProposalContext, knob: KnobSpec, evaluator: CandidateEvaluator) -> Search:
        """Try values with ``evaluator`` (the current one is already evaluated) and pick one."""

    def _check(self, ctx: ProposalContext, knob: KnobSpec) -> None:
        if knob.kind not in self.kinds:
            raise ProposalError(f"{type(self).__name__} handles {list(self.kinds)} knobs, "
                                f"not {knob.name!r} of kind {knob.kind!r}")
        if ctx.node not in (knob.node, ALL_NODES):
            raise ProposalError(f"knob {knob.name!r} belongs to node {knob.node!r}, not {ctx.node!r}")
        if knob.name not in ctx.current:
            raise ProposalError(f"knob {knob.name!r} has no current value in the assignment")
        if not ctx.inputs and ctx.node != ALL_NODES:
            raise ProposalError(f"node {ctx.node!r} has no recorded inputs to evaluate candidates on")

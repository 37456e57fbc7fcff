"""A node's numeric and choice knobs searched together by one Optuna study, since knobs
of one node often only pay off together (a window and a tolerance, say).

Each trial is a full assignment of the node's knobs. Its score comes from one of two
objectives, chosen by a rule recorded in the proposal:

* ``lrf``: run the node alone on its recorded inputs and rank the outputs with the
  node's LRF (no system runs; what the method does for expensive systems);
* ``global``: run the whole system on a training mini-batch (``ProposalContext.global_check``)
  and take the global metric, as plain Optuna would; each trial's system runs count
  against the budget.

``objective="auto"`` takes ``global`` when the job's measured runs are cheap
(``ProposalContext.run_cost``, the ``CheapRuns`` rule) and the budget affords at least
two trials, ``lrf`` otherwise. An ``lrf`` objective for a node whose LRF is not trusted
(``ProposalContext.trust``, ``proposers.trusted``) becomes ``global`` when the budget
affords two trials; the decision is recorded as ``trust_decision``. When such an LRF
scores every assignment alike (a node with no trained head), a seeded random one goes to
the gate rather than the current values by tie-break (``proposers.trusted.tied_draw``).
Under a cost-weighted objective an ``lrf`` search proposes the cheapest assignment within noise of the best
(``proposers.cheapest``); a ``global`` one scores runs net of cost already. Changes the gate
rejected under the same LRF and data (``ProposalContext.rejected``) are pruned without
being scored.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import optuna

from optimas_lg.graph.knobs import KnobKind, KnobSpec, space_size
from optimas_lg.proposers.base import Proposer, Search
from optimas_lg.proposers.candidates import CandidateEvaluator
from optimas_lg.proposers.cheapest import assignment_price, cheapest_within_noise
from optimas_lg.proposers.context import Cost, EvalConfig, Proposal, ProposalContext
from optimas_lg.proposers.cost import RunCost
from optimas_lg.proposers.numeric import check_space, run_study, suggest, trial_params
from optimas_lg.proposers.trusted import (
    MIN_CHECKS,
    affordable_checks,
    checks_affordable,
    checks_candidates,
    drawn_instead,
    tied_draw,
    unchecked,
    untrusted_head,
)

Objective = Literal["auto", "lrf", "global"]


@dataclass
class JointConfig(EvalConfig):
    """``n_trials`` counts different assignments tried, the current values first; an
    assignment the sampler suggests again costs nothing and does not count. ``objective``
    is ``auto`` (the cost rule decides), ``lrf`` or ``global``."""

    n_trials: int = 16
    objective: Objective = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.objective not in ("auto", "lrf", "global"):
            raise ValueError(f"objective must be 'auto', 'lrf' or 'global', got {self.objective!r}")


class JointProposer(Proposer):
    """TPE (or any Optuna ``sampler``) over all the numeric and choice knobs of a node at once.

    The default proposer of ``choice``, ``int`` and ``float`` knobs: the loop hands it
    every knob of the node it handles in one ``propose_all`` call. A fresh seeded sampler
    is built per proposal (seed and iteration), so proposals do not share state. When the
    search can afford every assignment of the knobs' space (a choice or two, a short int
    range), it tries them all (Optuna's ``BruteForceSampler``) instead of sampling.
    """

    kinds: ClassVar[tuple[KnobKind, ...]] = ("choice", "int", "float")
    config_class: ClassVar[type[EvalConfig]] = JointConfig
    config: JointConfig

    def __init__(self, config: JointConfig | None = None, sampler: optuna.samplers.BaseSampler | None = None) -> None:
        super().__init__(config)
        self.sampler = sampler

    def objective(self, ctx: ProposalContext) -> tuple[str, str]:
        """Which objective scores the trials, and why (recorded with the proposal)."""
        if self.config.objective == "lrf":
            return "lrf", "objective set to lrf"
        affordable = self._affordable(ctx)
        if ctx.global_check is None or affordable < MIN_CHECKS:
            why = "no global check in this context" if ctx.global_check is None else \
                f"the budget affords {affordable} global trials (< {MIN_CHECKS})"
            return "lrf", why
        if self.config.objective == "global":
            return "global", "objective set to global"
        if ctx.run_cost is None:
            return "lrf", "run cost not measured"
        verdict = "cheap" if ctx.run_cost.cheap else "not cheap"
        return ("lrf" if self.uses_lrf(ctx.run_cost) else "global"), f"system runs {verdict}: {ctx.run_cost.rule}"

    def trust_decision(self, ctx: ProposalContext, objective: str) -> tuple[str, str | None]:
        """An LRF objective for a node whose LRF is not trusted becomes the global one when the
        budget affords at least two trials; the decision in words (``None``: no LRF involved)."""
        if objective != "lrf" or (ctx.trust is None and not ctx.global_only):
            return objective, None
        if not checks_candidates(ctx):
            return "lrf", f"LRF trusted: {ctx.trust.describe()}"
        n, why = affordable_checks(ctx)
        if n is not None and min(n, self.config.n_trials) < MIN_CHECKS:
            return "lrf", f"{untrusted_head(ctx)}: {why}; {unchecked(ctx)}"
        return "global", f"{untrusted_head(ctx)}: searched on the train metric"

    def uses_lrf(self, cost: RunCost | None) -> bool:
        """The LRF ranks trials unless the objective is ``global``, or ``auto`` with cheap runs."""
        if self.config.objective == "auto":
            return cost is None or not cost.cheap
        return self.config.objective == "lrf"

    def _affordable(self, ctx: ProposalContext) -> int:
        n = checks_affordable(ctx.system_runs_left(), ctx.global_runs)
        return self.config.n_trials if n is None else min(self.config.n_trials, n)

    def propose_all(self, ctx: ProposalContext, knobs: list[KnobSpec]) -> list[Proposal]:
        """One proposal for ``knobs`` searched jointly (the current values may win)."""
        if not knobs:
            return []
        for knob in knobs:
            self._check(ctx, knob)
            check_space(knob)
        start = time.perf_counter()
        objective, why = self.objective(ctx)
        objective, trust_decision = self.trust_decision(ctx, objective)
        why = why if objective == "lrf" or trust_decision is None else trust_decision
        previous = {k.name: ctx.current[k.name] for k in knobs}
        if objective == "global":
            scored, cost = self._global_scores(ctx)
            inputs: dict[str, Any] = {"examples_per_trial": ctx.global_runs}
        else:
            evaluator = CandidateEvaluator(ctx, None, self.config)
            scored = _LRFScores(evaluator)
            cost, inputs = evaluator.cost, {"inputs": len(evaluator.inputs)}
        found = self._search(ctx, knobs, previous, scored, self._affordable(ctx) if objective == "global"
                             else self.config.n_trials)
        if isinstance(scored, _LRFScores):
            found = _cheapest_within_noise(ctx, knobs, scored, found)
            if not ctx.global_only and not (ctx.trust is not None and ctx.trust.trusted):
                drawn = tied_draw(ctx, scored.table(), lambda a: a)
                if drawn is not None:  # the decision said the LRF picked alone; it drew instead
                    found = Search(drawn[0], {**found.details, "rule": drawn[1]})
                    why = f"{why}; {drawn[1]}"
                    if trust_decision is not None:
                        trust_decision = drawn_instead(ctx, trust_decision, drawn[1])
        cost.seconds = time.perf_counter() - start
        value = found.value
        unscored = ctx.lrf_ties({"objective": objective})
        proposal = Proposal(
            node=ctx.node, knob=", ".join(previous), kind="joint" if len(knobs) > 1 else knobs[0].kind,
            previous=previous if len(knobs) > 1 else previous[knobs[0].name],
            value=value if len(knobs) > 1 else value[knobs[0].name],
            values={**ctx.current, **value}, current_score=None if unscored else scored.mean(previous),
            proposed_score=None if unscored else scored.mean(value),
            cost=cost, candidates=scored.table(),
            details={**found.details, **inputs, "objective": objective, "why": why,
                     "run_cost": ctx.run_cost.to_json() if ctx.run_cost else None,
                     **({"trust": ctx.trust and ctx.trust.to_json(), "trust_decision": trust_decision}
                        if trust_decision else {})})
        ctx.current = dict(proposal.values)
        return [self.record(ctx, proposal)]

    def _global_scores(self, ctx: ProposalContext) -> tuple[_Scores, Cost]:
        cost = Cost()
        check = ctx.global_check
        assert check is not None  # objective() chose global only with a check

        def run(assignment: dict[str, Any]) -> float:
            cost.system_runs += ctx.global_runs
            return check({**ctx.current, **assignment})

        return _Scores(run), cost

    def _search(self, ctx: ProposalContext, knobs: list[KnobSpec], previous: dict[str, Any], scored: _Scores,
                n_trials: int) -> Search:
        seed = random.Random(f"{ctx.seed}:{ctx.iteration}").randrange(2**31)
        size = space_size(knobs)
        if self.sampler is not None:
            sampler: optuna.samplers.BaseSampler = self.sampler
        elif size is not None and size <= n_trials:
            with warnings.catch_warnings():  # stable in use since Optuna 3.1, still labelled experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.BruteForceSampler(seed=seed)
        else:
            # Optuna's defaults, as a plain study has them: the first 10 trials (the current values
            # among them) are random draws. With fewer, TPE fits its densities to one or two
            # points and keeps to the current values' neighbourhood: a 4-trial system round on
            # offline_qa then tried one random draw and missed `answer_format=entity` (+0.18).
            sampler = optuna.samplers.TPESampler(seed=seed)
        pruned: list[dict[str, Any]] = []

        def objective(trial: optuna.Trial) -> float:
            assignment = {k.name: suggest(trial, k) for k in knobs}
            if ctx.rejected_change(assignment):
                if assignment not in pruned:
                    pruned.append(assignment)
                raise optuna.TrialPruned()
            return scored.score(assignment)

        scored.score(previous)
        study = run_study(sampler, {k.name: trial_params(k, previous[k.name]) for k in knobs}, objective,
                          max(1, n_trials), distinct=lambda: len(scored.tried) + len(pruned))
        best = scored.best(lambda a: not ctx.rejected_change(a))
        details = {"sampler": type(sampler).__name__, "trials": len(study.trials), "searched": list(previous)}
        if pruned:
            details["pruned_as_rejected"] = pruned
        return Search(best, details)

    def search(self, ctx: ProposalContext, knob: KnobSpec, evaluator: CandidateEvaluator) -> Search:
        """The one-knob search of ``Proposer.propose``: the same study, LRF-ranked."""
        check_space(knob)
        scored = _Scores(lambda a: evaluator.mean(evaluator.evaluate(a[knob.name]).value))
        found = self._search(ctx, [knob], {knob.name: ctx.current[knob.name]}, scored, self.config.n_trials)
        return Search(found.value[knob.name], found.details)


def _cheapest_within_noise(ctx: ProposalContext, knobs: list[KnobSpec], scored: _LRFScores, found: Search) -> Search:
    """Under a cost-weighted objective, the cheapest tried assignment the LRF cannot tell
    from the best (``proposers.cheapest``); the global objective prices runs itself."""
    allowed = [a for a, _ in scored.tried if not ctx.rejected_change(a)]
    cheaper = cheapest_within_noise(scored.evaluator, allowed, assignment_price(knobs, ctx.value_cost))
    if cheaper is None:
        return found
    return Search(cheaper, {**found.details, "rule": "cheapest assignment within one stderr of the best LRF mean"})


class _Scores:
    """Scores of assignments, each computed once, in the order tried (the current first)."""

    def __init__(self, fn: Callable[[dict[str, Any]], float]) -> None:
        self.fn = fn
        self.tried: list[tuple[dict[str, Any], float]] = []

    def score(self, assignment: dict[str, Any]) -> float:
        for seen, value in self.tried:
            if seen == assignment:
                return value
        value = float(self.fn(assignment))
        self.tried.append((dict(assignment), value))
        return value

    def mean(self, assignment: dict[str, Any]) -> float:
        return self.score(assignment)

    def best(self, allowed: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The best allowed assignment; the first tried (the current values) wins ties."""
        pool = [t for i, t in enumerate(self.tried) if i == 0 or allowed(t[0])]
        return max(pool, key=lambda t: t[1])[0]

    def table(self) -> list[tuple[Any, float]]:
        return [(dict(a), s) for a, s in self.tried]


class _LRFScores(_Scores):
    """Assignments scored by the node's LRF through a ``CandidateEvaluator`` (failures
    at its floor, so a mean can move when a later candidate widens the spread)."""

    def __init__(self, evaluator: CandidateEvaluator) -> None:
        super().__init__(lambda a: evaluator.mean(evaluator.evaluate(a).value))
        self.evaluator = evaluator

    def mean(self, assignment: dict[str, Any]) -> float:
        self.score(assignment)
        return self.evaluator.mean(assignment)

    def best(self, allowed: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return self.evaluator.best(allowed)

    def table(self) -> list[tuple[Any, float]]:
        return self.evaluator.table()

"""JointProposer: one Optuna study over a node's numeric and choice knobs, scored by the
LRF on recorded inputs or by the global metric, by a recorded cost rule; rejected changes
are pruned. The node is the order-support agent's lookup subgraph, run alone for real."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from optimas_lg.execution import replay
from optimas_lg.graph.system import System
from optimas_lg.lrf.trust import LRFTrust
from optimas_lg.proposers import CheapRuns, JointConfig, JointProposer, ProposalContext
from tests.graphs import orders

SYSTEM = System.load(orders.graph)
KNOBS = [SYSTEM.knobs["history_window"], SYSTEM.knobs["match_slack"]]
STATUS = [e for e in orders.examples(24) if "Where is" in e.inputs["messages"][0]["content"]]


def _state(example) -> dict[str, Any]:
    return {"customer": example.inputs["customer"], "intent": "status",
            "messages": [HumanMessage(example.inputs["messages"][0]["content"])]}


def found(pairs: list[tuple[dict, dict]]) -> list[float]:
    """Stand-in LRF: 1 when the lookup found an order."""
    return [float(orders.NOT_FOUND not in str(out["messages"][-1].content)) for _, out in pairs]


def context(**kw: Any) -> ProposalContext:
    return ProposalContext(node="lookup", knobs=KNOBS, current={"history_window": 2, "match_slack": 1},
                           inputs=[_state(e) for e in STATUS],
                           score=found, run_node=lambda st, k: replay.run_node(SYSTEM, "lookup", st, k), **kw)


def global_metric(knobs: dict[str, Any]) -> float:
    """The interaction, as the global metric sees it: both knobs must be high enough."""
    return 0.25 * (knobs["history_window"] >= 3) + 0.25 * (knobs["match_slack"] >= 2) + \
        0.5 * (knobs["history_window"] >= 3 and knobs["match_slack"] >= 2)


def test_the_two_lookup_knobs_are_searched_together_on_the_lrf():
    ctx = context()
    (proposal,) = JointProposer(JointConfig(n_trials=16, max_inputs=12)).propose_all(ctx, KNOBS)
    assert proposal.kind == "joint" and proposal.knob == "history_window, match_slack"
    assert proposal.knob_names == ["history_window", "match_slack"]
    assert proposal.previous == {"history_window": 2, "match_slack": 1}
    assert proposal.value["history_window"] >= 3 and proposal.value["match_slack"] >= 2
    assert proposal.proposed_score == 1.0 > proposal.current_score
    assert proposal.details["objective"] == "lrf" and proposal.details["why"] == "no global check in this context"
    assert proposal.cost.system_runs == 0 and proposal.cost.node_runs == len(STATUS) * len(proposal.candidates)
    assert ctx.current == proposal.values  # the next group of the round starts from here


def test_cheap_runs_are_spent_on_the_global_metric_within_the_budget():
    checks: list[dict[str, Any]] = []
    left = [40]

    def check(knobs: dict[str, Any]) -> float:
        checks.append(knobs)
        left[0] -= 8
        return global_metric(knobs)

    cost = CheapRuns().judge(runs=30, seconds=0.9, tokens=300)  # 10 tokens a run: cheap
    ctx = context(global_check=check, run_cost=cost, global_runs=8, runs_left=lambda: left[0])
    (proposal,) = JointProposer(JointConfig(n_trials=16)).propose_all(ctx, KNOBS)
    assert proposal.details["objective"] == "global"
    assert proposal.details["why"] == "system runs cheap: tokens/run 10.0 <= 100"
    assert proposal.details["run_cost"]["tokens_per_run"] == 10.0
    assert len(checks) <= 5 and proposal.cost.system_runs == 8 * len(checks)  # 40 runs left, 8 a trial
    assert proposal.cost.node_runs == 0 and proposal.current_score == 0.0


def test_expensive_runs_keep_the_lrf_and_spend_no_system_runs():
    cost = CheapRuns().judge(runs=10, seconds=30.0, tokens=5000)
    ctx = context(global_check=lambda k: pytest.fail("an expensive system must not be run"), run_cost=cost,
                  global_runs=8)
    (proposal,) = JointProposer(JointConfig(n_trials=6)).propose_all(ctx, KNOBS)
    assert proposal.details["objective"] == "lrf"
    assert proposal.details["why"] == "system runs not cheap: tokens/run 500.0 <= 100"


def test_a_change_the_gate_rejected_is_not_proposed_again():
    """Under a global metric with one best assignment, rejecting it makes the search pick
    another one; the rejected one is pruned, not re-scored."""
    best = {"history_window": 5, "match_slack": 3}

    def metric(knobs: dict[str, Any]) -> float:
        return 1.0 if {k: knobs[k] for k in best} == best else global_metric(knobs) * 0.5

    cheap = CheapRuns().judge(runs=1, seconds=0.0, tokens=0)
    first = JointProposer(JointConfig(n_trials=24)).propose_all(
        context(global_check=metric, run_cost=cheap, global_runs=1), KNOBS)[0]
    assert first.value == best
    again = JointProposer(JointConfig(n_trials=24)).propose_all(
        context(global_check=metric, run_cost=cheap, global_runs=1, rejected=[best]), KNOBS)[0]
    assert again.value != best and best not in [c for c, _ in again.candidates]
    assert again.details.get("pruned_as_rejected")


def test_the_cost_rule_uses_tokens_and_optionally_seconds():
    assert CheapRuns().judge(10, 5.0, 900).cheap  # 90 tokens a run
    assert not CheapRuns().judge(10, 0.1, 1100).cheap
    assert not CheapRuns().judge(0, 0.0, 0).cheap
    slow = CheapRuns(max_seconds_per_run=0.1).judge(10, 5.0, 0)
    assert not slow.cheap and slow.rule == "tokens/run 0.0 <= 100 and seconds/run 0.500 <= 0.1"
    with pytest.raises(ValueError, match="max_tokens_per_run"):
        CheapRuns(max_tokens_per_run=-1)


def test_the_lrf_is_in_use_only_for_expensive_runs_or_when_asked():
    cheap, dear = CheapRuns().judge(10, 1.0, 0), CheapRuns().judge(10, 1.0, 10_000)
    assert not JointProposer().uses_lrf(cheap) and JointProposer().uses_lrf(dear) and JointProposer().uses_lrf(None)
    assert JointProposer(JointConfig(objective="lrf")).uses_lrf(cheap)
    assert not JointProposer(JointConfig(objective="global")).uses_lrf(dear)


def test_an_untrusted_lrf_hands_the_search_to_the_global_metric_when_the_budget_allows():
    cost = CheapRuns().judge(runs=10, seconds=30.0, tokens=5000)  # expensive: the LRF would rank
    untrusted = LRFTrust.measure("lookup", 0.44, 30, 30)
    ctx = context(global_check=global_metric, run_cost=cost, global_runs=8, runs_left=lambda: 400,
                  trust=untrusted)
    (proposal,) = JointProposer(JointConfig(n_trials=8)).propose_all(ctx, KNOBS)
    assert proposal.details["objective"] == "global" and proposal.cost.system_runs > 0
    assert proposal.details["trust_decision"] == proposal.details["why"] == \
        "LRF not trusted (0.44 [0.28, 0.61] 30 pairs / 30 examples): searched on the train metric"
    assert proposal.details["trust"]["n"] == 30

    broke = context(global_check=lambda k: pytest.fail("no runs left for a check"), run_cost=cost, global_runs=8,
                    runs_left=lambda: 10, trust=untrusted)
    (proposal,) = JointProposer(JointConfig(n_trials=8)).propose_all(broke, KNOBS)
    assert proposal.details["objective"] == "lrf" and proposal.cost.system_runs == 0
    assert proposal.details["trust_decision"].endswith(
        "10 system runs left for this round, a check costs 8; the LRF picked alone")

    trusted = context(global_check=lambda k: pytest.fail("a trusted LRF picks alone"), run_cost=cost,
                      global_runs=8, trust=LRFTrust.measure("lookup", 0.9, 60, 60))
    (proposal,) = JointProposer(JointConfig(n_trials=8)).propose_all(trusted, KNOBS)
    assert proposal.details["objective"] == "lrf"
    assert proposal.details["trust_decision"] == "LRF trusted: 0.90 [0.80, 0.95] 60 pairs / 60 examples"


def test_global_only_searches_on_the_train_metric_whatever_the_run_cost():
    dear = CheapRuns().judge(runs=10, seconds=30.0, tokens=5000)
    ctx = context(global_check=global_metric, run_cost=dear, global_runs=8, runs_left=lambda: 400, global_only=True)
    (proposal,) = JointProposer(JointConfig(n_trials=8)).propose_all(ctx, KNOBS)
    assert proposal.details["objective"] == "global" and proposal.cost.system_runs > 0
    assert proposal.details["why"] == "no LRF (ranking=global): searched on the train metric"
    assert proposal.details["trust"] is None


def _counting_check(checks: list[dict[str, Any]]):
    def check(knobs: dict[str, Any]) -> float:
        checks.append({k: knobs[k] for k in ("history_window", "match_slack")})
        return global_metric(knobs)
    return check


def test_a_space_the_search_can_afford_whole_is_tried_whole_each_assignment_once():
    checks: list[dict[str, Any]] = []
    cheap = CheapRuns().judge(runs=30, seconds=0.9, tokens=300)
    ctx = context(global_check=_counting_check(checks), run_cost=cheap, global_runs=8, runs_left=lambda: 10_000)
    (proposal,) = JointProposer(JointConfig(n_trials=20)).propose_all(ctx, KNOBS)  # 5 windows x 4 slacks
    assert proposal.details["sampler"] == "BruteForceSampler"
    assert len(checks) == 20 and len({tuple(c.values()) for c in checks}) == 20
    assert checks[0] == {"history_window": 2, "match_slack": 1}  # the current values first
    assert proposal.proposed_score == 1.0 and proposal.cost.system_runs == 8 * 20


def test_n_trials_counts_different_assignments_so_a_repeated_suggestion_spends_no_trial():
    checks: list[dict[str, Any]] = []
    cheap = CheapRuns().judge(runs=30, seconds=0.9, tokens=300)
    ctx = context(global_check=_counting_check(checks), run_cost=cheap, global_runs=8, runs_left=lambda: 10_000)
    (proposal,) = JointProposer(JointConfig(n_trials=12)).propose_all(ctx, KNOBS)
    assert proposal.details["sampler"] == "TPESampler"
    assert len(checks) == len({tuple(c.values()) for c in checks}) == 12 == len(proposal.candidates)
    assert proposal.details["trials"] >= 12


def test_an_lrf_that_ties_every_assignment_sends_a_random_one_to_the_gate_not_the_current_values():
    dear = CheapRuns().judge(runs=10, seconds=30.0, tokens=5000)
    ctx = context(global_check=lambda k: pytest.fail("no runs left for a check"), run_cost=dear, global_runs=8,
                  runs_left=lambda: 10, trust=LRFTrust.measure("lookup", 0.0, 0, 0))
    ctx.score = lambda pairs: [0.0 for _ in pairs]  # no trained head: every output ties
    (proposal,) = JointProposer(JointConfig(n_trials=8)).propose_all(ctx, KNOBS)
    assert proposal.details["objective"] == "lrf" and proposal.changed and proposal.cost.system_runs == 0
    assert proposal.details["trust_decision"] == (
        "LRF not trusted (no held-out pairs): 10 system runs left for this round, a check costs 8; "
        f"the LRF scored all {len(proposal.candidates)} candidates alike, so a random one goes to the gate")

"""Search that uses what it knows (issue 13, item 3): the loop on the order-support agent
searches the lookup subgraph's two interacting knobs jointly on the global metric (its
runs are cheap), skips the triage prompt once keywords make it dead (searching it under
the values in force in the round that first proposes keywords), and never proposes
a change the gate rejected under the same LRF and data."""

from __future__ import annotations

import random
from typing import Any

import pytest

import optimas_lg
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.nodes import judged_changes, rejected_changes
from optimas_lg.loop.passes import next_node, searched_before_a_change, unvisited_in_pass
from optimas_lg.loop.progress import step_line
from optimas_lg.loop.records import Change, Decision, GateStep, NodeProposal, entry
from optimas_lg.loop.report import load_history
from optimas_lg.proposers import PromptProposer, Proposal, Search
from optimas_lg.store import models as m
from optimas_lg.store import queries
from tests.graphs import orders


class DeadPrompt(PromptProposer):
    """The triage prompt is dead once keywords classify: proposing it would be wasted."""

    def search(self, ctx, knob, evaluator) -> Search:
        if ctx.current["intent_source"] == "keywords":
            pytest.fail("a prompt the node no longer reads was searched")
        return Search(ctx.current[knob.name], {"rule": "keep"})


class TrainsOnTheLRF(PromptProposer):
    """A proposer that learns from the LRF's scores (as LoRA's GRPO does): with no LRF it
    would learn from ties."""

    trains_on_lrf = True

    def search(self, ctx, knob, evaluator) -> Search:
        pytest.fail("a proposer that trains on the LRF ran for a node without one")


def test_a_proposer_that_trains_on_the_lrf_is_not_run_for_a_node_without_one(store):
    examples = orders.examples(24)
    rounds: list[dict[str, Any]] = []
    optimas_lg.optimize(orders.graph, examples[:12], orders.resolved, valset=examples[12:], store=store,
                        settings={"gate": {"min_examples": 5}, "kinds": ["prompt"]},  # 12 examples: no pairs
                        proposers={"prompt": TrainsOnTheLRF}, max_iterations=1,
                        progress=lambda step, state: rounds.append(state) if step == "propose" else None)
    [state] = rounds
    assert NodeProposal.from_json(state["proposal"]).skipped == {
        "triage_prompt": "no LRF: it trains on the node's LRF scores, and the node has none"}
    assert "(no change) (skipped, no LRF: triage_prompt)" in (step_line("propose", state) or "")


class SeesIntents(PromptProposer):
    """Keeps the prompt, noting the intent source in force each time it is searched."""

    seen: list[str] = []

    def search(self, ctx, knob, evaluator) -> Search:
        SeesIntents.seen.append(ctx.current["intent_source"])
        return Search(ctx.current[knob.name], {"rule": "keep"})


def test_a_knob_only_a_tentative_change_turns_off_is_searched_under_the_values_in_force(store):
    """The triage round's choice search proposes keywords, under which the prompt is not read;
    the gate may yet reject keywords, so the prompt is searched under llm, not skipped."""
    examples = orders.examples(24)
    SeesIntents.seen = []
    rounds: list[dict[str, Any]] = []
    optimas_lg.optimize(orders.graph, examples[:12], orders.resolved, valset=examples[12:], store=store,
                        settings={"gate": {"min_examples": 5}, "kinds": ["choice", "prompt"], "system_round": False},
                        proposers={"prompt": SeesIntents}, max_iterations=3, patience=None,
                        progress=lambda step, state: rounds.append(state) if step == "propose" else None)
    triage = [NodeProposal.from_json(r["proposal"]) for r in rounds if r["proposal"]["node"] == "triage"]
    assert triage[0].changes["intent_source"].new == "keywords" and "triage_prompt" not in triage[0].skipped
    assert SeesIntents.seen == ["llm"]  # and once keywords were kept, dead: never searched under them


def test_what_the_gate_judged_is_every_rejected_change_and_every_value_an_accepted_one_replaced():
    kept = Decision("n", {"a": Change(1, 2)}, 10, True, 0.5, 0.7, 0.2, 0.1, "r", "w")
    state = {"history": [entry(kept)], "rejected": [{"lrf": "old", "changes": {"b": "y"}}]}
    assert judged_changes(state) == [{"b": "y"}, {"a": 1}]


def test_rejected_changes_are_each_gate_step_or_the_whole_change():
    changes = {"a": Change(1, 2), "b": Change("x", "y")}
    steps = [GateStep(["a"], False, 0.0, 0.1), GateStep(["b"], False, 0.0, 0.1), GateStep(["a", "b"], False, 0, 0)]
    decision = Decision("n", changes, 10, False, 0.5, 0.5, 0.0, 0.1, "rule", "why", steps=steps)
    assert rejected_changes(decision) == [{"a": 2}, {"b": "y"}, {"a": 2, "b": "y"}]
    assert rejected_changes(Decision("n", changes, 10, False, 0.5, 0.4, -0.1, 0.1, "r", "w")) == [{"a": 2, "b": "y"}]
    assert rejected_changes(Decision("n", {}, 10, False, 0.5, 0.5, 0.0, 0.0, "r", "no change")) == []


@pytest.mark.slow
def test_the_loop_finds_the_joint_lookup_knobs_and_skips_dead_ones(store):
    examples = orders.examples(36)
    config = OptimizeConfig.from_dict({
        "gate": {"min_examples": 5}, "lrf": {"epochs": 1, "max_tokens": 96, "progress": False},
        "pairs": {"samples": 3, "calls_per_node": 4}, "adapt_examples": 4, "kinds": ["choice", "int", "prompt"]})
    result = optimas_lg.optimize(orders.graph, examples[:12], orders.resolved, valset=examples[12:24],
                                 testset=examples[24:], store=store, settings=config, proposers={"prompt": DeadPrompt},
                                 max_iterations=5, max_system_runs=700, patience=None, progress=False)
    best = result.best_knobs
    assert best["intent_source"] == "keywords" and best["history_window"] >= 3 and best["match_slack"] >= 2
    assert result.test_after > result.test_before and result.val_after >= 10 / 12
    assert queries.job_spend(store, result.job_id)[0] <= 700
    events = store.select(m.OptimizerEvent, m.OptimizerEvent.job_id == result.job_id,
                          m.OptimizerEvent.kind == "proposal")
    proposals = [Proposal.from_json(e.payload) for e in events]
    lookup: list[Any] = [p for p in proposals if p.node == "lookup"]
    assert lookup and all(p.kind == "joint" and p.details["objective"] == "global" for p in lookup)
    assert all(p.details["why"].startswith("system runs cheap: tokens/run") for p in lookup)
    triage = [p for p in proposals if p.node == "triage"]
    assert any(p.value == "keywords" for p in triage)
    # the prompt was searched only under llm intents (DeadPrompt fails under keywords): in the round
    # that proposed keywords, under the values in force; once keywords were kept, never again
    kept_at = min(d.iteration for d in load_history(store, result.job_id).decisions
                  if d.record.accepted and "intent_source" in d.record.changes)
    prompt_rounds = [e.iteration for e in events if e.payload["knob"] == "triage_prompt"]
    assert max(prompt_rounds, default=0) <= kept_at, (prompt_rounds, kept_at)


def test_a_pass_visits_every_reached_node_before_any_node_again():
    reached = ["lexical", "dense", "fuse"]
    assert unvisited_in_pass([], reached) == reached
    assert unvisited_in_pass(["dense", "lexical"], reached) == ["fuse"]
    assert unvisited_in_pass(["dense", "lexical", "fuse"], reached) == reached  # a new pass
    assert unvisited_in_pass(["dense", "lexical", "fuse", "fuse"], reached) == ["lexical", "dense"]
    # a node an accepted change routed around no longer holds the pass open
    assert unvisited_in_pass(["dead", "dense", "lexical"], reached) == ["fuse"]
    assert unvisited_in_pass(["dense", "lexical"], ["dense", "lexical"]) == ["dense", "lexical"]


def test_headroom_order_takes_the_largest_measured_gain_then_the_unmeasured_then_the_rest():
    rng = random.Random(0)
    headroom = {"rewrite": 0.05, "answer": 0.2, "retrieve": 0.0}
    node, why = next_node(["rewrite", "retrieve", "answer", "tool"], headroom, "headroom", rng)
    assert node == "answer" and "+0.200" in why and "rewrite +0.050" in why
    assert next_node(["rewrite", "retrieve", "tool"], headroom, "headroom", rng)[0] == "rewrite"
    node, why = next_node(["retrieve", "tool"], headroom, "headroom", rng)
    assert node == "tool" and "without pairs" in why  # no evidence beats evidence of no gain
    assert next_node(["retrieve"], headroom, "headroom", rng)[0] == "retrieve"
    # equal headroom: a seeded draw, so both can come first
    firsts = {next_node(["a", "b"], {"a": 0.1, "b": 0.1}, "headroom", random.Random(s))[0] for s in range(20)}
    assert firsts == {"a", "b"}


def test_a_node_searched_before_another_nodes_accepted_change_is_revisited_first():
    rounds = [("retrieve", False), ("answer", True), ("rewrite", False)]
    assert searched_before_a_change(rounds) == {"retrieve": "answer"}
    assert searched_before_a_change([("retrieve", False), ("answer", False)]) == {}
    assert searched_before_a_change([("answer", True), ("retrieve", True)]) == {"answer": "retrieve"}
    stale = searched_before_a_change(rounds)
    measured_zero = {"retrieve": 0.0, "answer": 0.0, "rewrite": 0.0}
    for seed in range(10):
        node, why = next_node(["retrieve", "answer", "rewrite"], measured_zero, "headroom", random.Random(seed), stale)
        assert node == "retrieve" and why.endswith("last searched before the accepted change to answer")
    # a measured gain still comes first, and the paper's random order ignores staleness
    assert next_node(["retrieve", "rewrite"], {"rewrite": 0.1}, "headroom", random.Random(0), stale)[0] == "rewrite"
    firsts = {next_node(["retrieve", "rewrite"], {}, "random", random.Random(s), stale)[0] for s in range(20)}
    assert firsts == {"retrieve", "rewrite"}


def test_random_order_ignores_headroom():
    firsts = {next_node(["a", "b", "c"], {"a": 0.9}, "random", random.Random(s))[0] for s in range(30)}
    assert firsts == {"a", "b", "c"}

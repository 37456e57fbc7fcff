"""The pairs plan: a node gets pairs only when its even share of the pairs' runs can serve
the examples an LRF at the planned accuracy needs to be trusted; the cheapest nodes are kept."""

from __future__ import annotations

import pytest

from optimas_lg.api import optimize
from optimas_lg.loop.pair_plan import PairCost, plan_pairs
from optimas_lg.loop.progress import step_line
from optimas_lg.loop.records import LRFEvent, PairsCollected
from optimas_lg.store import models as m
from tests.graphs import lookup
from tests.loop.test_loop import LRF_RANKED


def test_no_limit_keeps_every_node_with_enough_examples():
    plan = plan_pairs([PairCost("a", 30, 6), PairCost("b", 10, 2)], None, 1.0, 0.25)
    assert plan.nodes == ["a"]
    assert plan.left_out == {"b": "at most 10 examples to serve, an LRF at 1.00 accuracy needs pairs from 14 "
                                  "to be trusted"}


def test_a_lower_planned_accuracy_needs_more_examples():
    costs = [PairCost("a", 50, 1), PairCost("b", 60, 1)]
    plan = plan_pairs(costs, None, 0.78, 0.25)  # 13 held out of 51 (1.0 needs 4 of 14)
    assert plan.nodes == ["b"]
    assert plan.left_out == {"a": "at most 50 examples to serve, an LRF at 0.78 accuracy needs pairs from 51 "
                                  "to be trusted"}
    assert plan_pairs(costs, None, 0.78, 0.5).nodes == ["a", "b"]  # holding out half: 13 of 26


def test_the_cheapest_nodes_that_each_fit_an_even_share_are_kept_in_their_order():
    costs = [PairCost("rewrite", 24, 6), PairCost("retrieve", 24, 4), PairCost("answer", 24, 2)]
    # needs 84, 56 and 28 runs: 120 runs pay for answer and retrieve (60 each), not all three (40 each)
    plan = plan_pairs(costs, 120, 1.0, 0.25)
    assert plan.nodes == ["retrieve", "answer"]
    assert plan.left_out == {"rewrite": "an LRF at 1.00 accuracy needs pairs from 14 examples to be trusted, 84 "
                                        "runs; the 120 runs for pairs cannot pay for them beside 2 other nodes"}
    assert plan_pairs(costs, 252, 1.0, 0.25).nodes == ["rewrite", "retrieve", "answer"]  # 84 each pays the dearest
    assert plan_pairs(costs, 27, 1.0, 0.25).nodes == []


def test_a_node_scored_exactly_costs_nothing_and_is_always_kept():
    plan = plan_pairs([PairCost("answer", 20, 0), PairCost("rewrite", 20, 6)], 0, 1.0, 0.25)
    assert plan.nodes == ["answer"] and "the 0 runs for pairs cannot pay for them beside 1 other node" \
        in plan.left_out["rewrite"]


def _optimize(store, train, val, accuracy=1.0, lrf_eval_fraction=0.25, **limits):
    lines: list[str] = []
    settings = {"gate": {"min_examples": 4}, "lrf": {"epochs": 1, "max_tokens": 32, "progress": False},
                "pairs_plan_accuracy": accuracy, "lrf_eval_fraction": lrf_eval_fraction,
                "proposers": {"choice": LRF_RANKED, "int": LRF_RANKED}, "system_round": False, "write_report": False}
    result = optimize(lookup.builder, train, lookup.metric, valset=val, store=store, settings=settings,
                      max_iterations=2, patience=None, progress=lambda node, state: lines.append(
                          step_line(node, state) or ""), **limits)
    return result, next(r for r in result.history if isinstance(r, PairsCollected)), lines


def test_the_loop_collects_pairs_only_for_nodes_whose_lrf_could_be_trusted(store):
    examples = lookup.examples()
    train, val = examples[:16], examples[16:]
    # 80 runs: baseline 4 and collect 16 leave 60, 30 for pairs; answer's 14 examples cost 28 (2 candidates),
    # retrieve's 42 (3): only answer is paid for
    result, collected, lines = _optimize(store, train, val, max_system_runs=80)
    assert collected.left_out == {"retrieve": "an LRF at 1.00 accuracy needs pairs from 14 examples to be trusted, "
                                              "42 runs; the 30 runs for pairs cannot pay for them beside 1 other node"}
    assert set(collected.candidates) == {"answer"} and collected.pairs["answer"] > 0
    nodes = {r.node for r in store.select(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id)}
    assert nodes == {"answer"}
    assert any("none for retrieve: an LRF at 1.00 accuracy needs pairs from 14 examples" in line for line in lines)


def test_too_few_examples_for_a_trusted_lrf_means_no_pairs_and_the_runs_go_to_the_rounds(store):
    examples = lookup.examples()
    result, collected, lines = _optimize(store, examples[:12], examples[12:], accuracy=0.78)
    assert collected.system_runs == 0 and not collected.pairs and set(collected.left_out) == {"retrieve", "answer"}
    assert collected.left_out["answer"] == ("at most 12 examples to serve, an LRF at 0.78 accuracy needs pairs "
                                            "from 51 to be trusted")
    assert not store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id)
    assert not any(isinstance(r, LRFEvent) for r in result.history)  # no LRF is trained on nothing
    assert any("pairs     per node {}; none for retrieve, answer: at most 12 examples to serve, an LRF at 0.78 "
               "accuracy needs pairs from 51 to be trusted  [runs 20 " in line for line in lines)
    assert result.val_after > result.val_before and store.get(m.Job, result.job_id).status == "done"


def test_the_adapt_step_collects_fresh_pairs_only_for_nodes_the_first_plan_kept(store):
    examples = lookup.examples()
    # holding out half, a perfect ranking needs 7 examples: the first step's 25 runs pay for answer's (14), not
    # retrieve's (21); an accepted change then adapts the LRF, whose retrieve head was trained on nothing
    result, first, _ = _optimize(store, examples[:12], examples[12:], lrf_eval_fraction=0.5, max_system_runs=70)
    assert set(first.left_out) == {"retrieve"} and set(first.candidates) == {"answer"}
    fresh = [r for r in result.history if isinstance(r, PairsCollected)][1:]
    assert fresh and all(set(r.candidates) == {"answer"} for r in fresh)


def test_a_plan_for_chance_accuracy_is_refused():
    with pytest.raises(ValueError, match="no better than chance"):
        plan_pairs([PairCost("a", 50, 1)], None, 0.5, 0.25)

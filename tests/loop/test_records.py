"""The loop's typed records: JSON out, the same record back in; a knob change is always
a mapping knob -> Change(old, new), however many knobs changed."""

from __future__ import annotations

import json

from optimas_lg.loop.budget import Spent
from optimas_lg.loop.nodes import _lrf_trust
from optimas_lg.loop.progress import step_line
from optimas_lg.loop.records import (
    Change,
    Collected,
    Decision,
    Evaluation,
    GateStep,
    LRFEvent,
    NodeProposal,
    PairsCollected,
    changes_between,
    entries,
    entry,
    read_history,
)
from optimas_lg.lrf.trust import LRFTrust


def _roundtrip(record):
    return type(record).from_json(json.loads(json.dumps(record.to_json())))


def test_records_read_back_equal():
    decision = Decision("answer", {"style": Change("a", "b")}, 10, True, 0.1, 0.3, 0.2, 0.05, "rule", "gain",
                        config_id=7, steps=[GateStep(["style"], True, 0.2, 0.05)], scores=[1.0, None])
    for record in [decision, Evaluation("val", "baseline", 1, [1.0, None, 0.0], 1),
                   LRFEvent("initial", 3, 40, {"answer": 0.7}, n_eval_pairs=9, train_loss=0.4),
                   NodeProposal("answer", ["style", "top_k"], {"style": Change("a", "b")}, {"style": "b", "top_k": 1},
                                0.1, 0.2),
                   Spent(2, 30, 1000, 4.5), Collected(12, 1, 0.5)]:
        assert _roundtrip(record) == record


def test_a_change_is_always_a_mapping():
    assert changes_between({"a": 1, "b": 2}, {"a": 1, "b": 3}) == {"b": Change(2, 3)}
    assert changes_between({"a": 1, "b": 2}, {"a": 5, "b": 3}) == {"a": Change(1, 5), "b": Change(2, 3)}
    assert changes_between({"a": 1}, {"a": 1}) == {}


def test_history_entries_keep_their_type():
    history = [entry(Collected(3, 0, 1.0)), entry(LRFEvent("initial", 1, 5, {})), entry(Collected(4, 1, None))]
    assert entries(history, Collected) == [Collected(3, 0, 1.0), Collected(4, 1, None)]
    assert [type(r).__name__ for r in read_history(history)] == ["Collected", "LRFEvent", "Collected"]


def test_evaluation_counts_failures_as_zero():
    evaluation = Evaluation("val", "x", 1, [1.0, None], 1)
    assert evaluation.mean == 0.5 and not evaluation.all_failed
    assert Evaluation("val", "x", 1, [None, None], 2).all_failed
    assert evaluation.to_json()["mean"] == 0.5


def test_a_proposal_carries_the_trust_decision_into_its_progress_line():
    decision = "LRF not trusted (0.44 [0.28, 0.61] 30 pairs / 30 examples): top 3 checked on the train metric"
    prop = NodeProposal("answer", ["style"], {"style": Change("a", "b")}, {"style": "b"}, 0.1, 0.2, trust=decision)
    assert _roundtrip(prop) == prop
    line = step_line("propose", {"iteration": 2, "proposal": prop.to_json(), "spent": {}})
    assert line is not None and line.startswith(f"[2] answer.style: LRF 0.100 → 0.200  ({decision})  [runs 0")


def test_a_round_ranked_with_no_lrf_records_no_lrf_scores():
    from optimas_lg.loop.nodes import round_scores
    from optimas_lg.lrf.trust import LRFTrust
    from optimas_lg.proposers import Cost, Proposal, ProposalContext

    def proposal(objective: str) -> Proposal:
        return Proposal("answer", "style", "choice", "a", "b", {"style": "b"}, 0.1, 0.2, Cost(), [("b", 0.2)],
                        {"objective": objective})

    def ctx(trust: LRFTrust | None, global_only: bool = False) -> ProposalContext:
        return ProposalContext(node="answer", knobs=[], current={}, inputs=[], score=lambda items: [],
                               run_node=lambda st, k: {}, trust=trust, global_only=global_only)

    measured = LRFTrust.measure("answer", 0.44, 30, 30)
    assert round_scores([proposal("lrf")], ctx(measured)) == ("lrf", 0.1, 0.2)  # an untrusted LRF still scored
    assert round_scores([proposal("lrf")], ctx(LRFTrust.untrained("answer"))) == (None, None, None)  # ties of none
    assert round_scores([proposal("lrf")], ctx(None, global_only=True)) == (None, None, None)
    assert round_scores([proposal("global")], ctx(LRFTrust.untrained("answer"))) == ("global", 0.1, 0.2)
    assert round_scores([proposal("lrf"), proposal("global")], ctx(measured)) == (None, None, None)


def test_a_node_is_trusted_by_the_latest_lrf_event_that_measured_it():
    history = [entry(PairsCollected({"answer": 200, "rewrite": 90, "retrieve": 4}, {}, {}, {}, {}, 300, None)),
               entry(LRFEvent("initial", 1, 90, {"answer": 0.9, "rewrite": 0.44},
                              n_eval_by_node={"answer": 60, "rewrite": 30},
                              n_eval_examples_by_node={"answer": 60, "rewrite": 10})),
               entry(LRFEvent("adapt1", 2, 12, {"rewrite": 0.95}, n_eval_by_node={"rewrite": 40},
                              n_eval_examples_by_node={"rewrite": 40}))]
    state = {"history": history}
    # not re-measured since training
    assert _lrf_trust(state, "answer").describe() == "0.90 [0.80, 0.95] 60 pairs / 60 examples"
    assert _lrf_trust(state, "rewrite").trusted and _lrf_trust(state, "rewrite").n == 40
    assert not _lrf_trust(state, "retrieve").trusted and _lrf_trust(state, "retrieve").n == 0
    assert _lrf_trust(state, "retrieve").trained  # trained on its 4 pairs, none held out
    assert _lrf_trust(state, "fetch") == LRFTrust.untrained("fetch")  # no pair was collected for it


def test_the_train_lrf_line_gives_each_accuracy_with_its_n():
    event = LRFEvent("initial", 1, 49, {"rewrite": 0.43, "retrieve": 0.75, "__overall__": 0.55}, n_eval_pairs=20,
                     train_accuracy={"rewrite": 0.8, "retrieve": 0.9, "answer": 1.0, "__overall__": 0.9},
                     n_eval_by_node={"rewrite": 14, "retrieve": 6},
                     n_eval_examples_by_node={"rewrite": 5, "retrieve": 3})
    line = step_line("train_lrf", {"history": [entry(event)], "spent": {}})
    assert line is not None and line.startswith(
        "train_lrf held-out ranking accuracy rewrite 0.43 (n=14 pairs / 5 examples) (at or below chance), "
        "retrieve 0.75 (n=6 pairs / 3 examples), answer - (n=0: no held-out pair), overall 0.55 (n=20)  [runs 0")


def test_a_node_proposal_groups_changed_knobs_by_the_search_that_chose_them():
    from optimas_lg.loop.records import Change, NodeProposal

    changes = {k: Change(0, 1) for k in ("top_k", "hops", "prompt")}
    proposal = NodeProposal("retrieve", ["top_k", "hops", "prompt", "style"], changes, {}, None, None,
                            units=[["top_k", "hops", "style"], ["prompt"]])
    assert proposal.change_units() == [("top_k", "hops"), ("prompt",)]  # unchanged style left out
    assert NodeProposal.from_json(proposal.to_json()).change_units() == proposal.change_units()
    assert NodeProposal("retrieve", [], changes, {}, None, None).change_units() == [("top_k",), ("hops",), ("prompt",)]


def test_the_baseline_and_collect_lines_say_how_many_runs_failed_how_they_count_and_the_first_error():
    error = "KeyError: 'score_table' (in node 'rank')"
    baseline = step_line("baseline", {"baseline_val": 0.5, "current_val_scores": [1.0, None, 0.5, None], "spent": {},
                                      "baseline_error": error})
    assert baseline is not None and baseline.startswith(
        f"baseline  val 0.500  (2 of 4 val runs failed, each scored 0; the first: {error})")
    clean = step_line("baseline", {"baseline_val": 0.5, "current_val_scores": [1.0, 0.0], "spent": {}})
    assert clean is not None and clean.startswith("baseline  val 0.500  [runs 0")
    collect = step_line("collect", {"history": [entry(Collected(14, 5, 0.833, error))], "spent": {}})
    assert collect is not None and collect.startswith(
        f"collect   14 runs (5 failed), mean 0.833 over those that ran; the first failure: {error}")


def test_no_pick_line_when_the_budget_stops_the_job_before_a_round():
    state = {"iteration": 0, "node": None, "stop_reason": "budget reached: 24 system runs (limit 30)", "spent": {}}
    assert step_line("pick_node", state) is None

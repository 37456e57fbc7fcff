"""The loop's typed records: JSON out, the same record back in; a knob change is always
a mapping knob -> Change(old, new), however many knobs changed."""

from __future__ import annotations

import json

from optimas_lg.loop.budget import Spent
from optimas_lg.loop.records import (
    Change,
    Collected,
    Decision,
    Evaluation,
    GateStep,
    LRFEvent,
    NodeProposal,
    changes_between,
    entries,
    entry,
    read_history,
)


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

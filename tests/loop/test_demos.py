"""Few-shot demos as a knob, end to end on small real systems (real LangGraph, store, LRF
training and gate; no LLM): demos bootstrapped from training calls are kept when they
help and rejected by the gate when they hurt."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimas_lg.api import optimize
from optimas_lg.errors import KnobError
from optimas_lg.graph.demos import demo_messages, demo_text
from optimas_lg.graph.knobs import Demos
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.report import load_history
from optimas_lg.store import models as m
from tests.graphs import demos

SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 3, "max_tokens": 32, "progress": False},
            "pairs_plan_accuracy": None,
            "pairs": {"samples": 2, "calls_per_node": 16}, "kinds": ["demos", "choice"],
            "system_round": False}  # one round, the demos node's own


def _optimize(builder, store, **settings):
    data = demos.examples()
    train, val, test = data[:16], data[16:28], data[28:]
    result = optimize(builder, train, demos.metric, valset=val, testset=test, store=store,
                      settings=OptimizeConfig.from_dict({**SETTINGS, **settings}), max_iterations=1, patience=None,
                      progress=False)
    return result, {e.key for e in train}


def test_demos_from_training_calls_are_found_and_kept(store):
    result, train_keys = _optimize(demos.helps, store)
    chosen = result.best_knobs["answer_demos"]
    assert chosen, f"no demos kept: {result.decisions}"
    assert result.val_after > result.val_before and result.test_after > result.test_before
    for demo in chosen:  # every demo points at a recorded training call of the answer node
        call = store.get(m.NodeCall, demo["source"]["call"])
        run = store.get(m.Run, call.run_id)
        assert call.node == "answer" and run.purpose == "collect" and run.example_key in train_keys
        assert demo["source"]["example"] == run.example_key and demo["output"] == call.output
    proposal = next(p.record for p in load_history(store, result.job_id).proposals if p.record.kind == "demos")
    assert [] in [value for value, _ in proposal.candidates]  # the empty set competed
    report = Path(result.report).read_text()
    assert "`answer_demos`: where each demo came from" in report and chosen[0]["source"]["call"][:20] in report


def test_demos_that_hurt_are_rejected_by_the_gate(store):
    result, _ = _optimize(demos.hurts, store, proposers={"demos": {"check_top": 0}})  # the LRF picks alone
    proposal = next(p.record for p in load_history(store, result.job_id).proposals if p.record.kind == "demos")
    assert proposal.changed, "the LRF did not propose demos, so the gate was not tested"
    assert result.best_knobs["answer_demos"] == []
    assert any("answer_demos" in "".join(s.knobs) and not s.accepted for d in result.decisions for s in d.steps)


def test_demos_render_as_chat_turns_or_text():
    shots = [{"input": {"question": "where does alra live?"}, "output": {"answer": "oslo"}, "source": {}}]
    turns = demo_messages(shots, "question", "answer")
    assert [(t.type, t.content) for t in turns] == [("human", "where does alra live?"), ("ai", "oslo")]
    assert demo_text(shots) == "Input: where does alra live?\nOutput: oslo"
    with pytest.raises(KnobError, match="more than k=1"):
        Demos(node="answer", k=1).validate("d", shots * 2)


def test_an_untrusted_lrf_does_not_pick_harmful_demos_alone(store):
    result, _ = _optimize(demos.hurts, store)
    proposal = next(p.record for p in load_history(store, result.job_id).proposals if p.record.kind == "demos")
    decision = proposal.details["trust_decision"]
    assert decision.startswith("LRF not trusted (") and "checked on the train metric, overruling" in decision
    assert not proposal.changed and proposal.cost.system_runs > 0  # the train metric kept the empty set
    assert "LRF not trusted (" in Path(result.report).read_text()

"""Choice proposer and the shared proposal machinery, with a deterministic LRF stand-in
(not the learned LRF: these tests check the optimizer, the loop wires in the real one)."""

from __future__ import annotations

import pytest

from optimas_lg.graph.knobs import Choice, KnobSpec
from optimas_lg.proposers import (
    ChoiceConfig,
    ChoiceProposer,
    NumericProposer,
    Proposal,
    ProposalContext,
    ProposalError,
)
from optimas_lg.store import Store, models

ANSWERS = {"capital of France": "Paris", "2 + 3": "5", "color of the sky": "blue", "bees make": "honey"}
STYLE = KnobSpec("style", Choice(["chatty", "terse", "broken"], node="answer"), "chatty")


def run_node(state: dict, knobs: dict) -> dict:
    """A stand-in node: the style decides the wording; 'broken' fails on every input."""
    gold = ANSWERS[state["question"]]
    if knobs["style"] == "broken":
        raise RuntimeError("model endpoint down")
    if knobs["style"] == "terse":
        return {"answer": gold}
    return {"answer": f"Well, that is a great question, and I think the answer might be {gold.lower()}!"}


def lrf(pairs: list[tuple[dict, dict]]) -> list[float]:
    """Stand-in LRF: exact answer 1, contained answer 0.5, minus a length penalty."""
    out = []
    for state, output in pairs:
        gold, answer = ANSWERS[state["question"]], output["answer"]
        hit = 1.0 if answer == gold else 0.5 if gold.lower() in answer.lower() else 0.0
        out.append(hit - len(answer) / 200)
    return out


def context(**kw) -> ProposalContext:
    return ProposalContext(node="answer", knobs=[STYLE], current={"style": "chatty"},
                           inputs=[{"question": q} for q in ANSWERS], score=lrf, run_node=run_node, **kw)


def test_argmax_picks_the_option_the_lrf_prefers_and_counts_failures():
    proposal = ChoiceProposer(ChoiceConfig(strategy="argmax")).propose(context(), STYLE)
    scores = dict(proposal.candidates)
    assert proposal.value == "terse" and proposal.changed
    assert proposal.values == {"style": "terse"}
    assert scores["terse"] > scores["chatty"] > scores["broken"]
    assert proposal.estimated_gain == pytest.approx(scores["terse"] - scores["chatty"])
    assert proposal.details["failures"] == {"2": 4}  # 'broken' failed on all 4 inputs, and was scored
    assert proposal.cost.node_runs == 12 and proposal.cost.lrf_calls == 8


def test_softmax_samples_by_score_and_temperature():
    cold = ChoiceProposer(ChoiceConfig(temperature=0.01))
    assert {cold.propose(context(seed=s), STYLE).value for s in range(20)} == {"terse"}
    hot = ChoiceProposer(ChoiceConfig(temperature=100.0)).propose(context(), STYLE)
    probs = dict(hot.details["probabilities"])
    assert all(p == pytest.approx(1 / 3, abs=0.01) for p in probs.values())
    picks = {ChoiceProposer(ChoiceConfig(temperature=100.0)).propose(context(seed=s), STYLE).value
             for s in range(30)}
    assert picks == {"chatty", "terse", "broken"}


def test_failure_score_can_be_fixed():
    proposal = ChoiceProposer(ChoiceConfig(strategy="argmax", failure_score=-5.0)).propose(context(), STYLE)
    assert dict(proposal.candidates)["broken"] == -5.0


def test_proposals_are_recorded_in_the_store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    job = store.create_job("optimize")
    proposal = ChoiceProposer(ChoiceConfig(strategy="argmax")).propose(
        context(store=store, job_id=job, iteration=3), STYLE)
    [event] = store.select(models.OptimizerEvent)
    assert (event.kind, event.node, event.iteration) == ("proposal", "answer", 3)
    assert event.payload["value"] == "terse" and event.payload["previous"] == "chatty"
    assert [c[0] for c in event.payload["candidates"]] == ["chatty", "terse", "broken"]
    assert event.payload["estimated_gain"] == pytest.approx(proposal.estimated_gain)
    assert Proposal.from_json(event.payload) == proposal  # the typed record reads back whole


def test_specific_errors():
    with pytest.raises(ProposalError, match="handles"):
        NumericProposer().propose(context(), STYLE)
    with pytest.raises(ProposalError, match="belongs to node"):
        ChoiceProposer().propose(ProposalContext(node="other", knobs=[STYLE], current={"style": "chatty"},
                                                 inputs=[{}], score=lrf, run_node=run_node), STYLE)
    with pytest.raises(ProposalError, match="no recorded inputs"):
        ChoiceProposer().propose(ProposalContext(node="answer", knobs=[STYLE], current={"style": "chatty"},
                                                 inputs=[], score=lrf, run_node=run_node), STYLE)

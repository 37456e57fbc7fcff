"""Under a cost-weighted objective, LRF-ranked model selection (the choice and the joint
proposer) takes the cheapest model whose outputs score within noise of the best one's,
and keeps the better model when the cheaper one is worse beyond noise. A stand-in node
and LRF: each model's answers are fixed, the LRF scores an answer 1 when it is right."""

from __future__ import annotations

from typing import Any

import pytest

from optimas_lg.graph.knobs import Choice, IntRange, KnobSpec
from optimas_lg.proposers import ChoiceConfig, ChoiceProposer, JointConfig, JointProposer, ProposalContext

QUESTIONS = [f"q{i}" for i in range(12)]
PRICES = {"large": 10.0, "lite": 2.0}
MODEL = KnobSpec("model", Choice(["large", "lite"], node="answer"), "large")
RETRIES = KnobSpec("retries", IntRange(0, 2, node="answer"), 0)


def run_node(wrong_by_lite: int):
    """``lite`` answers the first ``wrong_by_lite`` questions wrong, ``large`` none."""
    def run(state: dict, knobs: dict) -> dict:
        index = QUESTIONS.index(state["question"])
        return {"right": knobs["model"] == "large" or index >= wrong_by_lite}
    return run


def lrf(pairs: list[tuple[dict, dict]]) -> list[float]:
    return [float(out["right"]) for _, out in pairs]


def context(wrong_by_lite: int, knobs: list[KnobSpec], priced: bool = True) -> ProposalContext:
    return ProposalContext(node="answer", knobs=knobs, current={k.name: k.default for k in knobs},
                           inputs=[{"question": q} for q in QUESTIONS], score=lrf, run_node=run_node(wrong_by_lite),
                           value_cost=PRICES.get if priced else None)


def choose(proposer: str, wrong_by_lite: int, priced: bool = True) -> Any:
    if proposer == "choice":
        return ChoiceProposer(ChoiceConfig(strategy="argmax")).propose(
            context(wrong_by_lite, [MODEL], priced), MODEL).value
    (proposal,) = JointProposer(JointConfig(n_trials=8)).propose_all(
        context(wrong_by_lite, [MODEL, RETRIES], priced), [MODEL, RETRIES])
    return proposal.value["model"]


@pytest.mark.parametrize("proposer", ["choice", "joint"])
def test_the_cheaper_model_of_the_same_quality_wins_under_a_cost_weight(proposer):
    assert choose(proposer, wrong_by_lite=0) == "lite"
    assert choose(proposer, wrong_by_lite=1) == "lite"  # one answer in 12: within one paired stderr


@pytest.mark.parametrize("proposer", ["choice", "joint"])
def test_the_better_model_stays_when_the_cheaper_one_is_worse_beyond_noise(proposer):
    assert choose(proposer, wrong_by_lite=6) == "large"


@pytest.mark.parametrize("proposer", ["choice", "joint"])
def test_without_prices_quality_alone_decides(proposer):
    assert choose(proposer, wrong_by_lite=1, priced=False) == "large"

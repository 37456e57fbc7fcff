"""Numeric proposer (Optuna TPE) against a deterministic LRF stand-in with a known optimum."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import optuna
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg.execution import replay
from optimas_lg.graph.knobs import Choice, FloatRange, IntRange, KnobSpec
from optimas_lg.graph.system import System
from optimas_lg.proposers import (
    ChoiceConfig,
    ChoiceProposer,
    NumericConfig,
    NumericProposer,
    ProposalContext,
    ProposalError,
)

DOCS = [f"doc{i}" for i in range(64)]


def retrieve(state: dict, knobs: dict) -> dict:
    """A stand-in retriever: the top_k first documents."""
    return {"docs": DOCS[: knobs["top_k"]]}


def lrf(pairs: list[tuple[dict, dict]]) -> list[float]:
    """Stand-in LRF: the gold document must be retrieved; every extra document costs a little."""
    return [(state["gold"] in out["docs"]) - 0.01 * len(out["docs"]) for state, out in pairs]


def ctx_for(knob: KnobSpec, current, run_node, score, **kw) -> ProposalContext:
    return ProposalContext(node=knob.node, knobs=[knob], current={knob.name: current},
                           inputs=[{"gold": f"doc{g}"} for g in (2, 5, 7, 9)], score=score, run_node=run_node, **kw)


def test_tpe_finds_the_good_region_of_a_log_int_range():
    knob = KnobSpec("top_k", IntRange(1, 64, log=True, node="retrieve"), 1)
    seen = []
    proposal = NumericProposer(NumericConfig(n_trials=20)).propose(
        ctx_for(knob, 1, lambda s, k: seen.append(k["top_k"]) or retrieve(s, k), lrf), knob)
    assert seen[0] == 1  # the current value is evaluated first
    assert all(isinstance(v, int) and 1 <= v <= 64 for v in seen)
    # optimum: top_k = 10 (all golds found) scores 0.9; top_k = 1 finds none
    assert 10 <= proposal.value <= 16 and proposal.proposed_score >= 0.84
    assert proposal.current_score == pytest.approx(-0.01)
    assert proposal.details["sampler"] == "TPESampler" and proposal.details["trials"] >= 20
    assert len(proposal.candidates) == len(set(seen)) == 20  # 20 different values; a repeat is not re-run


def test_float_steps_are_honoured_and_the_current_value_can_win():
    knob = KnobSpec("temperature", FloatRange(0.0, 1.0, step=0.1, node="answer"), 0.7)

    def lrf_peak(pairs):
        return [-abs(out["t"] - 0.7) for _, out in pairs]

    proposal = NumericProposer(NumericConfig(n_trials=10)).propose(
        ctx_for(knob, 0.7, lambda s, k: {"t": k["temperature"]}, lrf_peak), knob)
    assert proposal.value == 0.7 and not proposal.changed and proposal.estimated_gain == 0
    assert all(math.isclose(round(v * 10), v * 10, abs_tol=1e-9) for v, _ in proposal.candidates)


def test_a_custom_sampler_plugs_in_and_log_with_step_is_refused():
    knob = KnobSpec("top_k", IntRange(1, 64, node="retrieve"), 1)
    proposal = NumericProposer(NumericConfig(n_trials=6), sampler=optuna.samplers.RandomSampler(seed=0)).propose(
        ctx_for(knob, 1, retrieve, lrf), knob)
    assert proposal.details["sampler"] == "RandomSampler"
    bad = KnobSpec("lr", FloatRange(1e-4, 1e-1, log=True, step=0.01, node="train"), 1e-3)
    with pytest.raises(ProposalError, match="log scale"):
        NumericProposer().propose(ctx_for(bad, 1e-3, lambda s, k: {}, lambda p: [0.0] * len(p)), bad)



@dataclass
class RetrieveKnobs:
    top_k: Annotated[int, IntRange(1, 32, node="retrieve")] = 8
    order: Annotated[str, Choice(["reverse", "forward"], node="retrieve")] = "reverse"


class RetrieveState(TypedDict, total=False):
    gold: str
    docs: list[str]


def retrieve_node(state: RetrieveState, runtime: Runtime[RetrieveKnobs]) -> RetrieveState:
    """Return the top_k documents in the chosen order."""
    ranked = DOCS if runtime.context.order == "forward" else DOCS[::-1]
    return {"docs": ranked[: runtime.context.top_k]}


def test_numeric_and_choice_on_a_real_graph_node_through_replay():
    """The loop's path: a LangGraph node run alone by ``replay.run_node``, four threads at a time."""
    builder = StateGraph(RetrieveState, context_schema=RetrieveKnobs)
    builder.add_node("retrieve", retrieve_node)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", END)
    system = System(builder)
    ctx = ProposalContext(node="retrieve", knobs=list(system.knobs.values()), current=system.knob_values(),
                          inputs=[{"gold": f"doc{g}"} for g in (2, 5, 7, 9)], score=lrf,
                          run_node=lambda state, knobs: replay.run_node(system, "retrieve", state, knobs))
    order = ChoiceProposer(ChoiceConfig(strategy="argmax")).propose(ctx, system.knobs["order"])
    assert order.value == "forward" and order.cost.node_runs == 8
    ctx.current = order.values
    top_k = NumericProposer(NumericConfig(n_trials=12)).propose(ctx, system.knobs["top_k"])
    assert 10 <= top_k.value <= 16 and top_k.proposed_score > 0.8


def test_search_keeps_optunas_per_trial_log_quiet_and_restores_its_verbosity(capfd):
    knob = KnobSpec("top_k", IntRange(1, 64, log=True, node="retrieve"), 1)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    NumericProposer(NumericConfig(n_trials=3)).propose(ctx_for(knob, 1, retrieve, lrf), knob)
    assert "Trial" not in capfd.readouterr().err
    assert optuna.logging.get_verbosity() == optuna.logging.INFO

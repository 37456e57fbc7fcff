"""Proposers on a real one-node LangGraph agent backed by the local SmolLM2-135M server.

The node runs through ``replay.run_node`` exactly as the optimizer loop runs it. The
rewards are deterministic LRF stand-ins (named below), not the learned LRF: these tests
check that each optimizer moves its knob toward what the reward prefers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg.execution import replay
from optimas_lg.graph import serde
from optimas_lg.graph.knobs import LoRA, Prompt, model_name
from optimas_lg.graph.system import System
from optimas_lg.llm import chat_model
from optimas_lg.proposers import LoRAConfig, LoRAProposer, PromptConfig, PromptProposer, ProposalContext

pytestmark = pytest.mark.slow

BASE = "local/smollm2-135m"
QUESTIONS = {"What is the capital of France?": "paris", "What color is the sky on a clear day?": "blue",
             "How many legs does a dog have?": "four", "What do bees make?": "honey"}


@dataclass
class Knobs:
    answer_prompt: Annotated[str, Prompt(node="answer")] = "Reply only with the word banana."
    answer_adapter: Annotated[str | None, LoRA(base=BASE, node="answer")] = None


class State(TypedDict, total=False):
    question: str
    answer: str


def answer(state: State, runtime: Runtime[Knobs]) -> State:
    """Answer the user's question."""
    knobs = runtime.context
    llm = chat_model(model_name(BASE, knobs.answer_adapter), temperature=0.0, max_tokens=16)
    reply = llm.invoke([SystemMessage(knobs.answer_prompt), HumanMessage(state["question"])])
    return {"answer": str(reply.content)}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPTIMAS_LG_HOME", str(tmp_path_factory.mktemp("home")))
        # share the converted model between test runs: conversion takes ~15 s
        mp.setenv("OPTIMAS_LG_MODEL_CACHE", os.environ.get("OPTIMAS_LG_MODEL_CACHE", os.path.abspath("storage/models")))
        builder = StateGraph(State, context_schema=Knobs)
        builder.add_node("answer", answer)
        builder.add_edge(START, "answer")
        builder.add_edge("answer", END)
        yield System(builder)


def context(system: System, score, **kw) -> ProposalContext:
    return ProposalContext(
        node="answer", knobs=list(system.knobs.values()), current=system.knob_values(),
        inputs=[{"question": q} for q in QUESTIONS], score=score,
        run_node=lambda state, knobs: replay.run_node(system, "answer", state, knobs),
        reads=["question"], writes=["answer"], doc=answer.__doc__, **kw)


def correctness(pairs: list[tuple[dict, dict]]) -> list[float]:
    """LRF stand-in: 1 when the answer contains the expected word."""
    return [float(QUESTIONS[s["question"]] in o["answer"].lower()) for s, o in pairs]


def test_opro_with_the_local_model_proposes_and_scores_prompts(system):
    """SmolLM2 as the proposer LLM: its replies must yield new prompts, each run through the
    real node and scored. (SmolLM2 mostly ignores system prompts, so whether one of its
    prompts beats the current one is left to chance: the improvement itself is shown in
    test_optimizers_prompt.py with a scripted proposer.)"""
    knob = system.knobs["answer_prompt"]
    proposal = PromptProposer(PromptConfig(rounds=1, num_candidates=3, max_tokens=64)).propose(
        context(system, correctness), knob)
    print("prompt candidates:", proposal.candidates, "cost:", proposal.cost)
    assert len(proposal.candidates) >= 2 and proposal.cost.llm_tokens > 0
    assert proposal.cost.node_runs == 4 * len(proposal.candidates)
    assert proposal.proposed_score >= proposal.current_score


def starts_with_the(pairs: list[tuple[dict, dict]]) -> list[float]:
    """LRF stand-in: 1 when the answer starts with "The" (a format a few steps can learn;
    only a learned LRF says whether the answer is right)."""
    return [float(o["answer"].lstrip().lower().startswith("the")) for _, o in pairs]


def test_grpo_raises_the_lrf_reward_and_the_served_adapter_changes_the_node(system):
    knob = system.knobs["answer_adapter"]
    prompts = [(s, serde.to_json([[SystemMessage(Knobs.answer_prompt), HumanMessage(s["question"])]]))
               for s in ({"question": q} for q in QUESTIONS)]
    ctx = context(system, starts_with_the, llm_prompts=prompts, global_check=lambda knobs: 1.0)
    proposal = LoRAProposer(LoRAConfig(max_steps=4, max_inputs=4, max_completion_length=4)).propose(ctx, knob)
    print("GRPO rewards per step:", proposal.details["train_rewards"])
    print("node LRF, base vs adapter:", proposal.current_score, proposal.proposed_score)
    assert len(proposal.details["train_rewards"]) == 4
    # the node's own (greedy) outputs, served with the new adapter, score higher
    adapter = proposal.details["adapter"]
    assert proposal.value == adapter and proposal.proposed_score > proposal.current_score
    before = [ctx.run_node(s, {**ctx.current, knob.name: None})["answer"] for s in ctx.inputs]
    after = [ctx.run_node(s, {**ctx.current, knob.name: adapter})["answer"] for s in ctx.inputs]
    print("base:", before, "\nadapter:", after)
    assert before != after

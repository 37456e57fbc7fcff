"""LoRA proposer. Fast tests replace GRPO training by a test double to check the decision
rules (LRF gain, global check); the slow test trains for real with TRL on SmolLM2 and
serves the adapter through the local model server. Rewards here are deterministic LRF
stand-ins, not the learned LRF (the loop wires that in)."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from optimas_lg.graph import serde
from optimas_lg.graph.knobs import KnobSpec, LoRA
from optimas_lg.proposers import LoRAConfig, LoRAProposer, ProposalContext, ProposalError
from optimas_lg.proposers.lora import chat_prompts, completion_text
from optimas_lg.store import Store, models

KNOB = KnobSpec("answer_adapter", LoRA(base="local/smollm2-135m", node="answer"), None)
QUESTIONS = ["What is the capital of France?", "What color is the sky?", "How many legs does a dog have?",
             "What is 2 plus 3?", "Name a fruit that is yellow.", "What do bees make?",
             "What is frozen water called?", "Which animal says moo?"]
SYSTEM = "Answer the question."


def brevity(pairs: list[tuple[dict, dict]]) -> list[float]:
    """LRF stand-in: shorter answers score higher (1 for an empty answer, 0 from 20 words)."""
    return [1.0 - min(len(out["answer"].split()), 20) / 20 for _, out in pairs]


def messages(question: str) -> list:
    return serde.to_json([[SystemMessage(SYSTEM), HumanMessage(question)]])  # as the recorder keeps them


def context(run_node, **kw) -> ProposalContext:
    states = [{"question": q} for q in QUESTIONS]
    return ProposalContext(node="answer", knobs=[KNOB], current={"answer_adapter": None}, inputs=states,
                           score=brevity, run_node=run_node, reads=["question"], writes=["answer"],
                           llm_prompts=[(s, messages(s["question"])) for s in states], **kw)


def test_recorded_messages_become_chat_prompts():
    assert chat_prompts(messages("hi")) == [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]]
    assert chat_prompts([{"role": "user", "content": "x"}]) == [[{"role": "user", "content": "x"}]]
    with pytest.raises(ProposalError, match="known role"):
        chat_prompts([{"role": "narrator", "content": "x"}])
    assert completion_text([{"role": "assistant", "content": "Paris"}]) == "Paris"


class ScriptedTraining(LoRAProposer):
    """Test double: 'training' returns a fixed adapter id instead of running GRPO."""

    def train(self, ctx, knob):
        return "short-v1", [0.2, 0.6], 100


def node_with_adapter(state: dict, knobs: dict) -> dict:
    if knobs["answer_adapter"] == "short-v1":
        return {"answer": "Paris."}
    return {"answer": "I think that the answer to your question is probably Paris, France."}


def test_adapter_is_proposed_when_lrf_improves_and_global_check_holds(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    job = store.create_job("optimize")
    checks = []
    proposal = ScriptedTraining().propose(
        context(node_with_adapter, global_check=lambda knobs: checks.append(knobs) or 0.5, store=store, job_id=job),
        KNOB)
    assert proposal.value == "short-v1" and proposal.previous is None and proposal.estimated_gain > 0.5
    assert checks == [{"answer_adapter": None}, {"answer_adapter": "short-v1"}]
    [event] = store.select(models.OptimizerEvent)
    assert event.payload["details"]["global_check"] == {"current": 0.5, "proposed": 0.5, "passed": True}
    assert event.payload["details"]["train_rewards"] == [0.2, 0.6]


def test_adapter_is_refused_when_the_global_metric_drops():
    scores = {None: 0.8, "short-v1": 0.3}  # the LRF is being gamed: brief but wrong
    proposal = ScriptedTraining().propose(
        context(node_with_adapter, global_check=lambda knobs: scores[knobs["answer_adapter"]]), KNOB)
    assert proposal.value is None and not proposal.changed
    assert proposal.details["global_check"] == {"current": 0.8, "proposed": 0.3, "passed": False}
    assert proposal.details["adapter"] == "short-v1"


def test_no_gain_on_the_lrf_means_no_change_and_no_global_check():
    proposal = ScriptedTraining().propose(
        context(lambda s, k: {"answer": "same"}, global_check=lambda knobs: pytest.fail("not needed")), KNOB)
    assert proposal.value is None and "global_check" not in proposal.details


def test_missing_prompts_or_output_key_are_specific_errors():
    ctx = context(node_with_adapter)
    ctx.llm_prompts = []
    with pytest.raises(ProposalError, match="no recorded LLM prompts"):
        LoRAProposer().propose(ctx, KNOB)
    ctx = context(node_with_adapter)
    ctx.writes = ["answer", "sources"]
    with pytest.raises(ProposalError, match="lora_output_fn"):
        LoRAProposer(LoRAConfig(max_steps=1)).propose(ctx, KNOB)

"""Prompt proposer (OPRO-style). The fast tests use a scripted proposer LLM and a
deterministic LRF stand-in; the slow one uses the local SmolLM2 model end to end."""

from __future__ import annotations

import dataclasses
from typing import Any

from langchain_core.language_models import FakeListChatModel
from langchain_core.language_models.fake_chat_models import SimpleChatModel

from optimas_lg.graph.knobs import KnobSpec, Prompt
from optimas_lg.llm.exploration import current_sampling
from optimas_lg.proposers import PromptConfig, PromptProposer, ProposalContext, parse_prompts
from optimas_lg.proposers.prompt import meta_prompt

KNOB = KnobSpec("answer_prompt", Prompt(node="answer"), "Say something.")
QUESTIONS = {"capital of France": "Paris", "2 + 3": "5", "color of the sky": "blue", "what bees make": "honey"}


def run_node(state: dict, knobs: dict) -> dict:
    """A stand-in node that follows its prompt: it answers only when told to, shouts when told to."""
    prompt = knobs["answer_prompt"].lower()
    answer = QUESTIONS[state["question"]] if "answer" in prompt else "Hello there."
    if "uppercase" in prompt:
        answer = answer.upper()
    if "explode" in prompt:
        raise ValueError("prompt too long for the context window")
    return {"answer": answer}


def lrf(pairs: list[tuple[dict, dict]]) -> list[float]:
    """Stand-in LRF: the right answer counts 1; in upper case another 0.5."""
    return [(QUESTIONS[s["question"]].lower() == o["answer"].lower()) + 0.5 * o["answer"].isupper()
            for s, o in pairs]


def context(prompt: str = "Say something.") -> ProposalContext:
    return ProposalContext(node="answer", knobs=[KNOB], current={"answer_prompt": prompt},
                           inputs=[{"question": q} for q in QUESTIONS], score=lrf, run_node=run_node,
                           reads=["question"], writes=["answer"], doc="Answers the user's question.")


def test_parse_prompts_survives_messy_small_model_output():
    assert parse_prompts("Sure!\n<prompt>Answer the question.\nBe brief.</prompt> trailing") == [
        "Answer the question.\nBe brief."]
    assert parse_prompts("<PROMPT> one </prompt><prompt>two") == ["one", "two"]
    assert parse_prompts("<prompt>a <prompt>b</prompt>") == ["a", "b"]
    assert parse_prompts('Instruction: "Answer now."') == ["Answer now."]
    assert parse_prompts("only a closing tag</prompt> junk") == ["only a closing tag"]
    assert parse_prompts("<prompt>  </prompt><prompt></prompt>") == []
    assert parse_prompts("") == []


def test_a_poor_prompt_is_improved_and_multiline_prompts_survive():
    replies = [
        "Here you go: <prompt>Answer the question.</prompt>",
        "<prompt>Answer the question.\nUse UPPERCASE letters only.</prompt>",
        "<prompt>answer   the question.</prompt>",  # a duplicate up to case and spaces
        "<prompt>Explode.</prompt>",  # fails on every input: scored, not skipped
    ]
    llm = FakeListChatModel(responses=replies)
    proposer = PromptProposer(PromptConfig(rounds=1, num_candidates=4, workers=1), llm=llm)  # replies in order
    proposal = proposer.propose(context(), KNOB)
    tried = [v for v, _ in proposal.candidates]
    assert tried == ["Say something.", "Answer the question.", "Answer the question.\nUse UPPERCASE letters only.",
                     "Explode."]
    assert proposal.value == "Answer the question.\nUse UPPERCASE letters only."
    assert proposal.current_score == 0 and proposal.proposed_score == 1.375  # '5' has no case
    assert proposal.details["failures"] == {"3": 4}
    meta = proposal.details["meta_prompt"]
    assert "Answers the user's question." in meta and "It reads: question." in meta and "Hello there." in meta


def test_history_is_shown_worst_to_best_and_no_change_can_win():
    llm = FakeListChatModel(responses=["<prompt>Greet the user.</prompt>", "nonsense <prompt></prompt>"])
    proposal = PromptProposer(PromptConfig(rounds=2, num_candidates=2, workers=1), llm=llm).propose(
        context("Answer in uppercase."), KNOB)
    assert proposal.value == "Answer in uppercase." and not proposal.changed
    meta = proposal.details["meta_prompt"]  # the last round's meta-prompt
    assert meta.index("<prompt>Greet the user.</prompt>") < meta.index("<prompt>Answer in uppercase.</prompt>")
    assert [r["proposed"] for r in proposal.details["rounds"]] == [1, 0]  # round 2 repeated round 1: deduped


def test_meta_prompt_shows_only_the_keys_the_node_reads():
    ctx = context()
    text = meta_prompt(ctx, [("p", 0.1)], [({"question": "q1", "secret": "s"}, {"answer": "a"}, 0.0)], PromptConfig())
    assert "q1" in text and "secret" not in text


class SeedEcho(SimpleChatModel):
    """Writes a prompt named after the sampling seed its request carries (as a served model
    would sample by it), and remembers the (temperature, seed) of every request."""

    requests: list = []

    @property
    def _llm_type(self) -> str:
        return "seed-echo"

    def _call(self, messages: list, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> str:
        active = current_sampling()
        assert active is not None, "a proposal request was sent without a sampling seed"
        seed = active.next_seed()
        self.requests.append((active.temperature, seed))
        return f"<prompt>Answer the question, variant {seed}.</prompt>"


def test_proposals_are_seeded_so_the_same_job_proposes_the_same_prompts():
    config = PromptConfig(rounds=2, num_candidates=3, temperature=0.9)

    def propose(iteration: int) -> tuple[list[str], list]:
        llm = SeedEcho(requests=[])
        ctx = dataclasses.replace(context(), seed=5, iteration=iteration)
        return [v for v, _ in PromptProposer(config, llm=llm).propose(ctx, KNOB).candidates], llm.requests

    first, requests = propose(1)
    assert len(first) == 1 + 6 and len({seed for _, seed in requests}) == 6  # every request its own seed
    assert {t for t, _ in requests} == {0.9}
    assert propose(1)[0] == first  # the same job again: the same prompts, in the same order
    assert set(propose(2)[0][1:]).isdisjoint(first[1:])  # another round of the job draws others

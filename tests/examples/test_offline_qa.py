"""The offline default example: its data generator, splits, metric, and graph with a fake model.

A fake chat model stands in for the model server, so these run in seconds; the real
model's scores are measured by ``examples.offline_qa.measure`` (see docs/examples/offline-qa.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.language_models.chat_models import SimpleChatModel
from langchain_core.messages import BaseMessage

from examples.offline_qa import agent
from examples.offline_qa.agent import AgentConfig, builder, graph, load_split
from examples.offline_qa.generate import DATA_DIR, SEED, SPLIT_SIZES, generate
from examples.offline_qa.metric import metric, token_f1
from optimas_lg.data import Example
from optimas_lg.graph.knobs import knob_specs


class LastFactModel(SimpleChatModel):
    """Rewrites by echoing the question; answers with the object of the last fact shown."""

    calls: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "last-fact"

    def _call(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
              **kwargs: Any) -> str:
        prompt = str(messages[-1].content)
        self.calls.append(prompt)
        if "Facts:" not in prompt:
            return prompt.rsplit("Question:", 1)[-1].strip()
        facts = prompt.split("Facts:\n", 1)[1].split("\n\nQuestion:", 1)[0].splitlines()
        last = facts[-1].rstrip(".")
        verbs = (" founded by ", " born in ", " headquarters in ", " works at ", " enjoys ", " makes ", " for its ")
        for verb in verbs:
            if verb in last:
                return "It is " + last.split(verb, 1)[1] + "."
        return "I do not know."


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> LastFactModel:
    model = LastFactModel(calls=[])
    monkeypatch.setattr(agent, "llm", lambda name, max_tokens: model)
    return model


def _support_recall(config: AgentConfig) -> float:
    """The share of val questions whose supporting facts were all retrieved."""
    examples = load_split("val")
    runs = [graph.invoke(e.inputs, context=config) for e in examples]
    return sum(set(e.labels["support"]) <= set(r["facts"]) for e, r in zip(examples, runs)) / len(examples)


def test_generator_is_seeded_and_matches_the_committed_files() -> None:
    data = generate(SEED)
    assert data == generate(SEED)
    assert data["kb"] != generate(SEED + 1)["kb"]
    for name, rows in data.items():
        committed = [json.loads(line) for line in (DATA_DIR / f"{name}.jsonl").read_text().splitlines()]
        assert committed == rows, f"data/{name}.jsonl is stale: run python -m examples.offline_qa.generate"


def test_splits_are_disjoint_sized_and_answerable_from_the_kb() -> None:
    kb = {row["text"] for row in generate(SEED)["kb"]}
    seen: set[str] = set()
    for name, size in SPLIT_SIZES.items():
        examples = load_split(name)
        questions = {e.inputs["question"] for e in examples}
        assert len(examples) == len(questions) == size
        assert not questions & seen
        seen |= questions
        assert {e.labels["hops"] for e in examples} == {1, 2}
        assert all(set(e.labels["support"]) <= kb and e.labels["answer"] in e.labels["support"][-1] for e in examples)
    with pytest.raises(ValueError, match="unknown split"):
        load_split("dev")


def test_metric_edge_cases() -> None:
    example = Example("x", {"question": "Who?"}, {"answer": "Ada Rusk"})
    assert metric(example, {"answer": "Ada Rusk"}) == 1.0
    assert metric(example, "ada rusk.") == 1.0
    assert metric(example, {"answer": "The founder is Ada Rusk."}) == pytest.approx(2 * 0.5 / 1.5)
    assert metric(example, {"answer": "Ada"}) == pytest.approx(2 / 3)
    for odd in (None, {}, {"answer": None}, {"answer": 3}, "", "...", ["Ada Rusk"]):
        assert metric(example, odd) == 0.0
    assert token_f1("anything", "") == 0.0


def test_knobs_cover_four_types_on_real_nodes() -> None:
    specs = knob_specs(AgentConfig, builder.nodes)
    assert {s.kind for s in specs.values()} == {"prompt", "choice", "int", "lora", "demos"}
    assert {s.node for s in specs.values()} == {"rewrite", "retrieve", "answer"}


def test_graph_runs_without_context(fake_model: LastFactModel) -> None:
    example = load_split("val")[0]
    out = graph.invoke(example.inputs)
    assert set(out) == {"question", "query", "facts", "answer"}
    assert len(out["facts"]) == AgentConfig.top_k
    assert len(fake_model.calls) == 2


def test_retrieval_knobs_change_facts_and_recall(fake_model: LastFactModel) -> None:
    question = {"question": load_split("val")[0].inputs["question"]}
    deep = graph.invoke(question, context=AgentConfig(top_k=3, hops=2))
    assert len(deep["facts"]) == 6
    shallow, tuned = _support_recall(AgentConfig(query_mode="question")), _support_recall(AgentConfig(
        query_mode="question", top_k=2, hops=2))
    assert tuned > shallow + 0.3


def test_answer_demos_come_before_the_task_as_worked_examples(fake_model: LastFactModel) -> None:
    example = load_split("val")[0]
    demo = {"input": {"question": "Who founded Orvale?", "facts": ["Orvale was founded by Ada Rusk."]},
            "output": {"answer": "Ada Rusk"}, "source": {"call": "c1"}}
    graph.invoke(example.inputs, context=AgentConfig(query_mode="question", answer_demos=[demo]))
    graph.invoke(example.inputs, context=AgentConfig(query_mode="question"))
    with_demo, without = fake_model.calls
    assert with_demo.startswith("Answer the question.\n\nFacts:\nOrvale was founded by Ada Rusk.\n\n"
                                "Question: Who founded Orvale?\nAnswer: Ada Rusk\n\nFacts:\n")
    assert with_demo.endswith(without.removeprefix("Answer the question.\n\n"))
    assert without.startswith("Answer the question.\n\nFacts:\n")  # no demos: the prompt as before


def test_query_mode_question_skips_the_rewrite_call(fake_model: LastFactModel) -> None:
    out = graph.invoke(load_split("val")[0].inputs, context=AgentConfig(query_mode="question"))
    assert out["query"] == out["question"]
    assert len(fake_model.calls) == 1


def test_answer_adapter_selects_the_model_name(monkeypatch: pytest.MonkeyPatch, fake_model: LastFactModel) -> None:
    names: list[str] = []
    monkeypatch.setattr(agent, "llm", lambda name, max_tokens: names.append(name) or fake_model)
    graph.invoke(load_split("val")[0].inputs, context=AgentConfig(query_mode="question", answer_adapter="a1"))
    assert names == ["local/smollm2-135m@a1"]


def test_answer_format_entity_keeps_the_final_name(fake_model: LastFactModel) -> None:
    example = load_split("val")[0]
    context = dict(query_mode="question", top_k=1, hops=1)
    sentence = graph.invoke(example.inputs, context=AgentConfig(**context))["answer"]
    entity = graph.invoke(example.inputs, context=AgentConfig(**context, answer_format="entity"))["answer"]
    assert sentence.startswith("It is ") and sentence.endswith(".")
    assert entity == sentence.removeprefix("It is ").rstrip(".")
    assert metric(example, {"answer": entity}) >= metric(example, {"answer": sentence})
    assert agent._trailing_entity("Luxlosgu was founded by Berer Daxni.") == "Berer Daxni"
    assert agent._trailing_entity("I do not know.") == "I do not know."

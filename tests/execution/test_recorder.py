"""Recording: node calls, reads, knobs, routes, Send tasks, subgraphs, retries, LLM calls, async, concurrency."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph.reads import ReadTracker, read_values
from optimas_lg.graph.system import System
from optimas_lg.store import models
from tests.graphs import shapes


def always(example, output):
    return 1.0


def record(store, graph, inputs, knobs=None, n=1):
    system = System.load(graph)
    examples = [Example(f"e{i}", inputs(i) if callable(inputs) else inputs) for i in range(n)]
    summary = run_examples(system, examples, always, knobs, store, progress=False, concurrency=8)
    assert summary.n_failed == 0, summary.results[0].error
    return summary


def calls(store, run_id, kind="node"):
    nc = models.NodeCall
    return store.select(nc, nc.run_id == run_id, nc.kind == kind, order_by=nc.started_at)


def test_read_tracker_notes_reads():
    state = ReadTracker({"a": 1, "b": 2, "c": 3})
    assert state["a"] == 1 and state.get("b") == 2 and "zz" not in state
    assert state.reads == {"a", "b", "zz"}
    copy = state.__copy__()  # LangGraph hands the second task of a step a copy of the first's input
    assert copy == {"a": 1, "b": 2, "c": 3} and copy.reads == set()
    assert pickle.loads(pickle.dumps(state)) == copy
    assert state.reads == {"a", "b", "zz"}  # copying is not reading
    dict(copy)
    assert copy.reads == {"a", "b", "c"}


@dataclass
class _DataclassState:
    question: str
    docs: list


class _PydanticState(BaseModel):
    question: str
    docs: list


@pytest.mark.parametrize("state", [{"question": "q", "docs": ["d"]}, _DataclassState("q", ["d"]),
                                   _PydanticState(question="q", docs=["d"])])
def test_read_values_of_any_state_schema(state):
    """What the LRF and the prompt proposer see of an input, whatever the state schema (a
    dataclass state crashed the pairs step, a pydantic one gave the LRF no input at all)."""
    assert read_values(state, ["question"]) == {"question": "q"}
    assert read_values(state) == {"question": "q", "docs": ["d"]}
    assert read_values("a Send argument") == {"input": "a Send argument"}


def test_sequential_run_records_inputs_reads_knobs_and_latency(store):
    summary = record(store, shapes.sequential(), {"question": "where is rome"}, {"top_k": 3})
    run = store.get(models.Run, summary.results[0].run_id)
    assert run.status == "done" and run.score == 1.0 and run.output["answer"] == "rome is in italy"
    rewrite, retrieve, answer = calls(store, run.id)
    assert [c.node for c in (rewrite, retrieve, answer)] == ["rewrite", "retrieve", "answer"]
    assert [c.step for c in (rewrite, retrieve, answer)] == [1, 2, 3]
    assert rewrite.reads == ["question"] and retrieve.reads == ["query"] and answer.reads == ["docs"]
    assert retrieve.inputs == {"question": "where is rome", "query": "search: where is rome"}
    assert len(retrieve.output["docs"]) == 3
    assert retrieve.knobs == {"top_k": 3} and answer.knobs == {"style": "plain"}
    assert all(c.task_id and c.latency_s > 0 and c.error is None for c in (rewrite, retrieve, answer))


def test_routing_decisions_are_recorded(store):
    summary = record(store, shapes.conditional(typed=False), {"n": 0, "log": []})
    routes = calls(store, summary.results[0].run_id, "route")
    assert [r.output for r in routes] == [{"router": "untyped_route", "value": v}
                                          for v in ["bump", "bump", "__end__"]]
    nodes = {c.id for c in calls(store, summary.results[0].run_id)}
    assert all(r.parent_call_id in nodes for r in routes)


def test_send_tasks_parallel_branches_and_state_snapshot(store):
    summary = record(store, shapes.map_reduce(), {"topic": "t"})
    run_id = summary.results[0].run_id
    work = [c for c in calls(store, run_id) if c.node == "work"]
    assert sorted(c.inputs["item"] for c in work) == ["t-0", "t-1", "t-2"]
    assert len({c.task_id for c in work}) == 3 and {c.step for c in work} == {2}
    (snapshot,) = calls(store, run_id, "state")
    assert snapshot.step == 2 and snapshot.inputs["items"] == ["t-0", "t-1", "t-2"]
    summary = record(store, shapes.parallel(), {"n": 0, "log": []})
    assert sorted((c.step, c.node) for c in calls(store, summary.results[0].run_id)) == [
        (1, "a"), (2, "b"), (2, "c"), (3, "d")]


def test_subgraph_calls_nest_under_their_node(store):
    summary = record(store, shapes.with_subgraph(), {"n": 1, "log": []})
    by_node = {c.node: c for c in calls(store, summary.results[0].run_id)}
    assert set(by_node) == {"bump", "sub", "double"}
    assert by_node["double"].parent_call_id == by_node["sub"].id
    assert by_node["double"].namespace.startswith("sub:") and by_node["sub"].namespace == ""


def test_retries_are_separate_calls(store):
    shapes.FLAKY.clear()
    summary = record(store, shapes.retrying(), {"n": 5})
    attempts = calls(store, summary.results[0].run_id)
    assert [c.node for c in attempts] == ["flaky", "flaky"]
    assert "ValueError: transient" in attempts[0].error and attempts[1].error is None
    assert attempts[1].output == {"n": 6}


def test_llm_calls_nest_under_the_node_that_made_them(store):
    summary = record(store, shapes.react_agent(), {"messages": [("user", "2+3?")]})
    run_id = summary.results[0].run_id
    nodes = calls(store, run_id)
    assert [c.node for c in nodes] == ["model", "tools", "model"]
    llm = store.select(models.LLMCall, models.LLMCall.run_id == run_id, order_by=models.LLMCall.started_at)
    assert [c.node_call_id for c in llm] == [nodes[0].id, nodes[2].id]
    assert llm[0].response[0]["value"]["kwargs"]["tool_calls"][0]["name"] == "add"
    assert summary.n_llm_calls == 2 and summary.prompt_tokens == 1 + 3
    assert summary.results[0].output["messages"][-1].content == "5"


def test_async_graph_is_recorded(store):
    summary = record(store, shapes.async_graph(), {"n": 0, "log": []})
    assert summary.results[0].output["n"] == 2
    assert [c.node for c in calls(store, summary.results[0].run_id)] == ["first", "second"]


class AnswerOnly(TypedDict):
    answer: str


class CountOnly(TypedDict):
    n: int


@pytest.mark.parametrize("graph, inputs, output", [
    (shapes.sequential(AnswerOnly), {"question": "where is rome"}, {"answer": "rome is in italy"}),
    (shapes.async_graph(CountOnly), {"n": 0, "log": []}, {"n": 2}),
])
def test_recorded_output_is_the_output_schema_as_invoke_returns_it(store, graph, inputs, output):
    """A streamed "values" event holds every channel; the metric must see what invoke returns."""
    recorded = record(store, graph, inputs).results[0]
    assert recorded.output == output and store.get(models.Run, recorded.run_id).output == output


@pytest.mark.parametrize("graph", [shapes.sequential, shapes.async_graph])
def test_32_concurrent_runs_never_mix(store, graph):
    if graph is shapes.sequential:
        summary = record(store, graph(), lambda i: {"question": f"q{i}"}, n=32)
        key = "question"
    else:
        summary = record(store, graph(), lambda i: {"n": 100 * i, "log": []}, n=32)
        key = "n"
    for i, result in enumerate(summary.results):
        assert result.example_key == f"e{i}"
        first = calls(store, result.run_id)[0]
        assert first.inputs[key] == (f"q{i}" if key == "question" else 100 * i)
        assert len(calls(store, result.run_id)) in (2, 3)

"""Replay: a node alone on its recorded input, continuations via checkpoint forks, equivalence."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated

import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.graph import START, StateGraph
from langgraph.managed import RemainingSteps
from langgraph.runtime import Runtime
from langgraph.types import Command
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.errors import ReplayError
from optimas_lg.execution.replay import knobs_read, replay, rollout_from, run_node
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph import serde
from optimas_lg.graph.knobs import Choice
from optimas_lg.graph.system import System
from optimas_lg.store import models
from tests.graphs import lookup, orders, shapes

SHAPES = {
    "sequential": (shapes.sequential, {"question": "where is paris"}),
    "conditional": (lambda: shapes.conditional(typed=False), {"n": 0, "log": []}),
    "runtime_router": (shapes.runtime_router, {"n": 0, "log": []}),
    "parallel": (shapes.parallel, {"n": 0, "log": []}),
    "map_reduce": (shapes.map_reduce, {"topic": "t"}),
    "subgraph": (shapes.with_subgraph, {"n": 1, "log": []}),
    "commands": (lambda: shapes.commands(typed=False), {"n": 1, "log": []}),
    "parent_command": (shapes.parent_command, {"n": 1, "log": []}),
    "async": (shapes.async_graph, {"n": 0, "log": []}),
    "react": (shapes.react_agent, {"messages": [("user", "2+3?")]}),
}


def same(value):
    """Compare outputs without the random ids LangChain gives new messages."""
    if isinstance(value, BaseMessage):
        return (value.type, value.content, [c["name"] for c in getattr(value, "tool_calls", [])])
    if isinstance(value, dict):
        return {k: same(v) for k, v in value.items()}
    if isinstance(value, list):
        return [same(v) for v in value]
    return value


def recorded(store, factory, inputs, knobs=None):
    system = System.load(factory())
    example = Example("e", inputs, {"answer": "paris is in france"})
    (result,) = run_examples(system, [example], lambda e, o: 1.0, knobs, store, progress=False).results
    assert result.ok, result.error
    nc = models.NodeCall
    return system, example, result, store.select(nc, nc.run_id == result.run_id, nc.kind == "node",
                                                 nc.namespace == "", order_by=nc.started_at)


def test_a_subgraph_node_that_routes_its_parent_returns_that_command_when_run_alone(store):
    system, example, result, (sub, _) = recorded(store, *SHAPES["parent_command"])
    output = run_node(system, "sub", serde.from_json(sub.inputs))
    assert isinstance(output, Command) and output.graph is None
    assert (output.goto, output.update) == ("done", {"n": 6, "log": ["pick"]})
    (rollout,) = rollout_from(system, "sub", serde.from_json(sub.inputs), output, example, lambda e, o: 1.0, None, 1)
    assert rollout.final_output == result.output == {"n": 6, "log": ["pick", "done"]}


@pytest.mark.parametrize("shape", SHAPES)
def test_replaying_any_node_with_its_output_reproduces_the_run(store, shape):
    system, example, result, node_calls = recorded(store, *SHAPES[shape])
    for call in node_calls:
        (rollout,) = replay(system, call, example, lambda e, o: 1.0, store=store)
        assert rollout.error is None, f"{shape}/{call.node}: {rollout.error}"
        assert same(rollout.final_output) == same(result.output), f"{shape}: replay of {call.node}@{call.step}"


def test_a_rollout_routes_by_its_own_knobs_when_the_router_reads_them_through_runtime(store):
    """Applying the replayed node's output runs its router, which LangGraph's update_state
    calls with no runtime (it raised "Missing required config key 'N/A' for 'route'")."""
    system, example, result, calls = recorded(store, *SHAPES["runtime_router"])
    first = calls[0]
    for limit, log in ((3, ["bump0", "bump1", "bump2"]), (1, ["bump0"]), (5, [f"bump{i}" for i in range(5)])):
        (rollout,) = rollout_from(system, "bump", serde.from_json(first.inputs), {"n": 1, "log": ["bump0"]},
                                  example, lambda e, o: 1.0, {"limit": limit}, 1)
        assert rollout.error is None and rollout.final_output["log"] == log, (limit, rollout)


def test_replay_with_other_knobs_reruns_the_node_and_continues(store):
    system, example, result, (rewrite, retrieve, answer) = recorded(store, *SHAPES["sequential"])
    assert run_node(system, "retrieve", retrieve.inputs, {"top_k": 1}) == {"docs": ["paris is in france"]}
    (rollout,) = replay(system, retrieve, example, shapes.exact_match, knobs={"top_k": 4}, store=store)
    assert len(rollout.final_output["docs"]) == 4 and rollout.score == 1.0
    (rollout,) = replay(system, rewrite, example, shapes.exact_match, knobs={"rewrite_prompt": "rome italy"},
                        store=store)
    assert rollout.final_output["answer"] == "rome is in italy" and rollout.score == 0.0
    # downstream nodes keep the recorded run's knobs
    system, example, result, (_, retrieve, _) = recorded(store, *SHAPES["sequential"], knobs={"style": "upper"})
    (rollout,) = replay(system, retrieve, example, shapes.exact_match, output={"docs": ["x y"]}, store=store)
    assert rollout.final_output["answer"] == "X Y"


def test_rollouts_are_recorded_as_rollout_runs(store):
    system, example, result, (_, retrieve, _) = recorded(store, *SHAPES["sequential"])
    rollouts = rollout_from(system, "retrieve", retrieve.inputs, {"docs": ["berlin is in germany"]}, example,
                            shapes.exact_match, {}, rollouts=3, store=store, job_id=None)
    assert [r.score for r in rollouts] == [0.0, 0.0, 0.0] and len({r.run_id for r in rollouts}) == 3
    runs = [store.get(models.Run, r.run_id) for r in rollouts]
    assert all(r.purpose == "rollout" and r.status == "done" for r in runs)
    nodes = store.select(models.NodeCall, models.NodeCall.run_id == rollouts[0].run_id)
    assert [c.node for c in nodes] == ["answer"]


def test_send_task_runs_alone_on_its_argument(store):
    system, example, result, calls = recorded(store, *SHAPES["map_reduce"])
    work = next(c for c in calls if c.node == "work")
    out = run_node(system, "work", work.inputs, {}, as_send=True, graph_state={"topic": "t"})
    assert out == {"results": [work.inputs["item"].upper()]}


def test_replay_errors_are_specific(store):
    system, example, result, calls = recorded(store, *SHAPES["subgraph"])
    nc = models.NodeCall
    inner = store.select(nc, nc.run_id == result.run_id, nc.node == "double")[0]
    with pytest.raises(ReplayError, match="inside subgraph node 'sub'"):
        replay(system, inner, example, lambda e, o: 1.0, store=store)
    system, example, result, calls = recorded(store, *SHAPES["conditional"])
    route = store.select(nc, nc.run_id == result.run_id, nc.kind == "route")[0]
    with pytest.raises(ReplayError, match="only node calls replay"):
        replay(system, route, example, lambda e, o: 1.0, store=store)
    with pytest.raises(ReplayError, match="not in the graph"):
        run_node(system, "nope", {}, {})


def test_knobs_read_tells_a_dead_code_path_from_a_live_one():
    """The order agent's triage reads its prompt only when the LLM classifies; the lookup
    subgraph's inner nodes read both its knobs; a graph without context schema cannot tell."""
    system = System.load(orders.graph)
    state = {"customer": "c1", "intent": "", "messages": [HumanMessage("Where is my lamp? About 5 days ago.")]}
    assert knobs_read(system, "triage", [state], {}) == {"intent_source", "triage_prompt"}
    assert knobs_read(system, "triage", [state], {"intent_source": "keywords"}) == {"intent_source"}
    assert knobs_read(system, "lookup", [state], {}) == {"history_window", "match_slack"}
    assert knobs_read(system, "lookup", [{"messages": []}], {}) is None  # every run failed: unknown
    answer = {"question": "where does alda live?", "facts": ["alda lives in oslo"]}
    assert knobs_read(System.load(lookup.builder), "answer", [answer], {}) == {"style"}


@dataclass
class Tone:
    tone: Annotated[str, Choice(["plain", "loud"], node="whole")] = "plain"
    unused: Annotated[str, Choice(["a", "b"], node="whole")] = "a"


def _whole(state: dict, runtime: Runtime[Tone]) -> dict:
    settings = vars(runtime.context)  # the context as a whole: every knob may be read
    return {"text": state["text"].upper() if settings["tone"] == "loud" else state["text"]}


def _configurable(state: dict, config) -> dict:
    loud = config["configurable"]["tone"] == "loud"  # the path for older agents: the probe cannot see it
    return {"text": state["text"].upper() if loud else state["text"]}


@dataclass
class _Loud:
    tone: Annotated[str, Choice(["plain", "loud"], node="work")] = "plain"


def test_knobs_read_of_a_send_task_runs_it_on_its_send_argument():
    """Seeded as a state, a Send argument's fields that are not state channels were dropped:
    the node ran on nothing, read no knob, and its knob was skipped as dead."""
    from langgraph.types import Send

    class Words(TypedDict):
        word: str
        parts: Annotated[list, operator.add]

    def work(arg: dict, runtime: Runtime[_Loud]) -> dict:
        return {"parts": [arg["ch"].upper() if arg.get("ch") and runtime.context.tone == "loud" else ""]}

    g = StateGraph(Words, context_schema=_Loud)
    g.add_node("work", work)
    g.add_conditional_edges(START, lambda s: [Send("work", {"ch": c}) for c in s["word"]])
    system = System.load(g)
    sent_from = [{"word": "ab", "parts": []}]
    assert knobs_read(system, "work", [{"ch": "a"}], {}, graph_states=sent_from) == {"tone"}


@pytest.mark.parametrize("node, read", [(_whole, {"tone", "unused"}), (_configurable, None)])
def test_knobs_read_through_the_whole_context_or_configurable_are_never_dead(node, read):
    class Text(TypedDict):
        text: str

    g = StateGraph(Text, context_schema=Tone)
    g.add_node("whole", node)
    g.add_edge(START, "whole")
    assert knobs_read(System.load(g), "whole", [{"text": "hi"}], {}) == read


class Parts(TypedDict, total=False):
    parts: Annotated[list[str], operator.add]
    summary: str


@dataclass
class Sep:
    sep: Annotated[str, Choice([" ", "-"], node="join")] = " "


def _deferred_join() -> StateGraph:
    def join(state: Parts, runtime: Runtime[Sep]) -> dict:
        return {"summary": runtime.context.sep.join(state["parts"])}

    builder = StateGraph(Parts, context_schema=Sep)
    builder.add_node("a", lambda s: {"parts": ["a"]})
    builder.add_node("b", lambda s: {"parts": ["b"]})
    builder.add_node("join", join, defer=True)  # waits for every branch, however long
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge("a", "join")
    builder.add_edge("b", "join")
    return builder


def test_a_deferred_node_runs_alone_and_its_knobs_are_read(store):
    """A deferred node waits for the end of its run, which a replay thread never reaches:
    run alone it returned nothing, so its knobs looked dead and were never searched."""
    system = System.load(_deferred_join())
    state = {"parts": ["x", "y"]}
    assert run_node(system, "join", state, {"sep": "-"}) == {"summary": "x-y"}
    assert knobs_read(system, "join", [state], {}) == {"sep"}
    (run,) = run_examples(system, [Example("e", {}, {})], lambda e, o: 1.0, {"sep": "-"}, store,
                          progress=False).results
    assert sorted(run.output["summary"].split("-")) == ["a", "b"]  # the graph itself still defers


class Budgeted(TypedDict, total=False):
    text: str
    remaining_steps: RemainingSteps  # a managed value, as in create_react_agent's state


def test_a_managed_value_in_the_state_is_not_written_back_as_a_channel(caplog):
    """Seeding a replay with the recorded ``remaining_steps`` logged "wrote to unknown channel"
    on every replay (52 times in one small job)."""
    builder = StateGraph(Budgeted)
    builder.add_node("shout", lambda s: {"text": f"{s['text'].upper()} ({s['remaining_steps']} left)"})
    builder.add_edge(START, "shout")
    with caplog.at_level("WARNING"):
        out = run_node(System.load(builder), "shout", {"text": "hi", "remaining_steps": 24})
    assert out["text"].startswith("HI (") and "unknown channel" not in caplog.text

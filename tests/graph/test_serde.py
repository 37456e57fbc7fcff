"""Serde: recorded values come back as the same types, and a store is data, never code."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sqlite3
import sys
from typing import Annotated, Literal, NamedTuple

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import BaseModel
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.errors import SerdeError
from optimas_lg.execution.replay import replay
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph import serde
from optimas_lg.graph.knobs import IntRange
from optimas_lg.graph.system import System
from optimas_lg.store import models
from tests.graphs import shapes


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


class Span(NamedTuple):
    start: int
    end: int


@dataclasses.dataclass
class Note:
    text: str
    mood: Mood = Mood.HAPPY
    name: str = ""  # a field called like the decoder's own parameters


class Meta(TypedDict):
    span: Span | None


class State(BaseModel):
    n: int = 0
    notes: Annotated[list[Note], lambda a, b: a + b] = []
    meta: Meta | None = None


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass
class Config:
    k: Annotated[int, IntRange(1, 5, node="write")] = 1
    level: Literal[Level.LOW] = Level.LOW


@dataclasses.dataclass
class Stray:
    """A type no schema of the graph mentions, which a node could still store under an ``Any`` field."""

    value: int


def write(state: State, runtime: Runtime[Config]) -> dict:
    return {"notes": [Note(f"k={runtime.context.k}", Mood.SAD)], "meta": {"span": Span(0, runtime.context.k)}}


def total(state: State) -> dict:
    return {"n": state.n + len(state.notes) + state.meta["span"].end}


def graph() -> StateGraph:
    g = StateGraph(State, context_schema=Config)
    g.add_node("write", write)
    g.add_node("total", total)
    g.add_edge(START, "write")
    g.add_edge("write", "total")
    g.add_edge("total", END)
    return g


def test_schema_types_are_found_through_fields_containers_reducers_and_literals():
    types = System(graph()).types
    assert all(cls in types for cls in (State, Note, Mood, Span, Config, Level)) and len(types) == 6
    assert Stray not in types and Stray in System(graph(), types=[Stray]).types


def test_values_round_trip_as_their_own_types():
    value = {
        "state": State(n=2, notes=[Note("a"), Note("b", Mood.SAD, name="n")], meta={"span": Span(1, 2)}),
        "level": Level.LOW, "tuple": (1, "x"), "set": {1, 2}, "frozen": frozenset({"a"}), "bytes": b"\x00\xff",
        "when": dt.datetime(2026, 1, 2, 3, 4, 5), "day": dt.date(2026, 1, 2), "inf": float("inf"),
        "keys": {1: "one", (2, 3): "pair"}, "tagged": {serde.TAG: "not a tag"},
        "messages": [HumanMessage("hi"), AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}]),
                     ToolMessage("2", tool_call_id="c1")],
        "docs": [Document("paris is in france", metadata={"source": "wiki"})],
        "send": Send("total", {"n": 1}), "command": Command(goto="total", update={"n": 3}),
    }
    back = serde.from_json(json.loads(json.dumps(serde.to_json(value))), System(graph()).types)
    assert back == value
    assert type(back["state"].notes[1].mood) is Mood and type(back["state"].meta["span"]) is Span


def test_numpy_arrays_and_scalars_round_trip_bit_for_bit():
    """Embeddings and feature vectors in state replay as the same arrays (object arrays stay a repr)."""
    values = [np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3).T, np.int64(7), np.array(["a", "bc"]),
              np.array(2.5), np.bool_(True)]
    for value in values:
        back = serde.from_json(json.loads(json.dumps(serde.to_json(value))))
        assert type(back) is type(value) and back.dtype == value.dtype and np.array_equal(back, value)
    with pytest.raises(SerdeError, match="stored only as its repr"):
        serde.from_json(serde.to_json(np.array([object()], dtype=object)))


def test_langchain_messages_and_documents_need_no_registration_but_prompts_are_refused():
    value = [HumanMessage("hi"), Document("d")]
    assert serde.from_json(serde.to_json(value)) == value
    prompt = serde.to_json(ChatPromptTemplate.from_messages([("user", "{x}")]))
    with pytest.raises(SerdeError, match="ChatPromptTemplate, which is not a message or document"):
        serde.from_json(prompt)


@pytest.mark.parametrize("payload", [
    {serde.TAG: "namedtuple", "cls": "os:system", "items": ["echo tampered"]},
    {serde.TAG: "dataclass", "cls": "os:system", "fields": {"command": "echo tampered"}},
    {serde.TAG: "pydantic", "cls": "subprocess:getoutput", "fields": {"cmd": "echo tampered"}},
    {serde.TAG: "enum", "cls": "os:system", "value": "echo tampered"},
    {serde.TAG: "lc", "value": {"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {}}},
], ids=["namedtuple", "dataclass", "pydantic", "enum", "lc"])
def test_a_type_the_graph_does_not_declare_is_refused_by_name(payload, monkeypatch):
    ran = []
    monkeypatch.setattr("os.system", lambda *a, **k: ran.append(a) or 0)
    monkeypatch.setattr("subprocess.getoutput", lambda *a, **k: ran.append(a) or "")
    with pytest.raises(SerdeError, match="os.system|subprocess:getoutput") as err:
        serde.from_json({"question": [payload]}, System(graph()).types)
    assert ran == [] and "\n" not in str(err.value)
    if payload[serde.TAG] != "lc":
        assert "System(builder, types=[...])" in str(err.value)


@pytest.mark.reliability
def test_a_name_read_from_data_is_never_imported():
    assert "this" not in sys.modules  # importing it prints the Zen of Python: nothing else does
    with pytest.raises(SerdeError, match="this:Zen"):
        serde.from_json({serde.TAG: "dataclass", "cls": "this:Zen", "fields": {}})
    assert "this" not in sys.modules


def test_a_graph_type_is_refused_without_that_graphs_types():
    recorded = serde.to_json(Span(1, 2))
    with pytest.raises(SerdeError, match=f"{__name__}:Span, which this graph does not declare"):
        serde.from_json(recorded)
    assert serde.from_json(recorded, serde.Types([Span])) == Span(1, 2)


def test_replay_rebuilds_the_graphs_own_types(store):
    system = System(graph())
    example = Example("e", {"n": 1, "notes": [Note("x")]}, {})
    (result,) = run_examples(system, [example], lambda e, o: float(o["n"]), None, store, progress=False).results
    assert result.ok and result.output["n"] == 4, result.error
    nc = models.NodeCall
    (call,) = store.select(nc, nc.run_id == result.run_id, nc.node == "write", nc.kind == "node")
    (rollout,) = replay(system, call, example, lambda e, o: float(o["n"]), knobs={"k": 3}, store=store)
    assert rollout.error is None and rollout.final_output["notes"] == [Note("x"), Note("k=3", Mood.SAD)]
    assert rollout.score == 6.0


@pytest.mark.reliability
def test_a_tampered_store_runs_no_code(store, home, tmp_path):
    """Someone with write access to a shared store edits a recorded node input to name os:system."""
    system = System.load(shapes.sequential())
    example = Example("e", {"question": "where is paris"}, {"answer": "paris is in france"})
    (result,) = run_examples(system, [example], shapes.exact_match, None, store, progress=False).results
    nc = models.NodeCall
    (call,) = store.select(nc, nc.run_id == result.run_id, nc.node == "retrieve", nc.kind == "node")
    marker = tmp_path / "pwned"
    evil = {serde.TAG: "namedtuple", "cls": "os:system", "items": [f"touch {marker}"]}
    with sqlite3.connect(home / "optimas.db") as db:  # as an attacker would: the file, not the API
        rows = db.execute("SELECT id, inputs FROM node_calls WHERE run_id = ? AND step = ?",
                          (result.run_id, call.step)).fetchall()
        for row_id, inputs in rows:
            db.execute("UPDATE node_calls SET inputs = ? WHERE id = ?",
                       (json.dumps({**json.loads(inputs), "query": evil}), row_id))
    (call,) = store.select(nc, nc.run_id == result.run_id, nc.node == "retrieve", nc.kind == "node")
    assert call.inputs["query"] == evil and len(rows) == 1
    with pytest.raises(SerdeError, match="os:system"):
        replay(system, call, example, shapes.exact_match, knobs={"top_k": 1}, store=store)
    assert not marker.exists()


def test_messages_in_a_servers_json_come_back_as_the_same_recorded_messages():
    messages = [HumanMessage("where is it?", id="h1"), AIMessage("shipped", usage_metadata={
        "input_tokens": 3, "output_tokens": 1, "total_tokens": 4}), ToolMessage("42", tool_call_id="t1")]
    state = {"messages": messages, "n": 1}
    wire = json.loads(json.dumps(serde.to_wire(state)))  # what a LangGraph Server sends and reads
    assert wire["messages"][0] == {**HumanMessage("where is it?", id="h1").model_dump(), "type": "human"}
    assert serde.to_json(serde.from_wire(wire)) == serde.to_json(state)
    # a dict that is not exactly a message's fields stays a dict
    plain = {"type": "human", "content": "hi"}
    assert serde.from_wire([plain]) == [plain]

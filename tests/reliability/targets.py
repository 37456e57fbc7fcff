"""Broken pieces for the bad-input table: graphs, metrics and targets that fail in the
ways users' own code does."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.llm.chat import chat_model
from tests.graphs import lookup


def _with_answer(answer) -> StateGraph:
    """The lookup graph with its ``answer`` node replaced."""
    builder = StateGraph(lookup.State, context_schema=lookup.Config)
    builder.add_node("retrieve", lookup.retrieve)
    builder.add_node("answer", answer)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "answer")
    builder.add_edge("answer", END)
    return builder


def _broken_answer(state, runtime) -> dict:
    raise ValueError("answer node is broken")


def _asks_the_model_server(state, runtime) -> dict:
    reply = chat_model("local/smollm2-135m").invoke(state["question"])
    return {"answer": reply.content}


class _Handle:
    """A value with no JSON form (a client, a lock, an open file): recorded only as its repr."""


class _HandleState(lookup.State, total=False):
    handle: _Handle


def _retrieve_with_a_handle(state, runtime) -> dict:
    return {**lookup.retrieve(state, runtime), "handle": _Handle()}


def _answer_with_a_handle(state, runtime) -> dict:
    assert isinstance(state["handle"], _Handle)
    return lookup.answer(state, runtime)


raising_node = _with_answer(_broken_answer)
model_server_node = _with_answer(_asks_the_model_server)


class Plain(TypedDict):
    question: str


opaque_state = StateGraph(_HandleState, context_schema=lookup.Config)
opaque_state.add_node("retrieve", _retrieve_with_a_handle)
opaque_state.add_node("answer", _answer_with_a_handle)
opaque_state.add_edge(START, "retrieve")
opaque_state.add_edge("retrieve", "answer")
opaque_state.add_edge("answer", END)

no_knobs = StateGraph(Plain)
no_knobs.add_node("echo", lambda state: state)
no_knobs.add_edge(START, "echo")
no_knobs.add_edge("echo", END)


def raising_metric(example: Example, output: dict) -> float:
    raise KeyError("score")


def text_metric(example: Example, output: dict) -> str:
    return "good"


not_a_function = 3

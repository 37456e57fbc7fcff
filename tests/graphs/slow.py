"""A graph whose runs take a while, to stop part-way: one node sleeping ``DELAY`` seconds
(sync in ``graph``, async in ``async_graph``). With ``SLOW_GRAPH_LOG`` set, every run
appends a line to that file when it starts, so a test knows runs are under way."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

DELAY = 0.4


class State(TypedDict, total=False):
    n: int
    answer: int


def _started(n: int) -> None:
    if log := os.environ.get("SLOW_GRAPH_LOG"):
        with open(log, "a") as f:
            f.write(f"{n}\n")


def work(state: State) -> dict[str, Any]:
    _started(state["n"])
    time.sleep(DELAY)
    return {"answer": state["n"] * 2}


async def awork(state: State) -> dict[str, Any]:
    _started(state["n"])
    await asyncio.sleep(DELAY)
    return {"answer": state["n"] * 2}


def _build(node: Any) -> StateGraph:
    g = StateGraph(State)
    g.add_node("work", node)
    g.add_edge(START, "work")
    return g


graph = _build(work).compile()
async_graph = _build(awork).compile()


def metric(example: Any, output: dict[str, Any]) -> float:
    return float(output["answer"] == 2 * example["n"])

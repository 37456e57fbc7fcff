"""A deterministic graph served by ``langgraph dev`` in the server tests (``langgraph.json``: ``served``).

It has the shapes a server run must record and replay like a local one: a ``Send``
fan-out (``plan`` sends each picked fact to ``look``), a join (``compose`` waits for every
``look``), and a conditional router (``route`` sends short drafts to ``finish`` and long
ones to ``trim`` first). No model, no network: every node is a pure function of its input
and the knobs, so a local and a served run of the same job must agree exactly.

Headroom: the defaults (1 fact: where the person lives) score 0.5 on ``examples()``;
``n_facts=2`` scores 1.0 (with ``pick="last"``, the default; ``"first"`` undoes it).
``wording`` changes the route (a ``city`` draft is short enough to skip ``trim``) but
never the score.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.graph.knobs import Choice, IntRange

FACTS = {
    "anna": ["anna lives in oslo", "anna works in bergen"],
    "ben": ["ben lives in lima", "ben works in cusco"],
    "cara": ["cara lives in kyoto", "cara works in osaka"],
    "dan": ["dan lives in quito", "dan works in cuenca"],
}
MAX_DRAFT = 3  # words: a longer draft is trimmed before the answer


class Served(TypedDict, total=False):
    person: str
    facts: list[str]
    found: Annotated[list[str], operator.add]
    draft: str
    answer: str


@dataclass
class ServedConfig:
    n_facts: Annotated[int, IntRange(1, 2, node="plan")] = 1
    wording: Annotated[str, Choice(["raw", "city"], node="look")] = "raw"
    pick: Annotated[str, Choice(["first", "last"], node="compose")] = "last"


def plan(state: Served, runtime: Runtime[ServedConfig]) -> dict[str, Any]:
    """Pick the person's facts to look up."""
    return {"facts": FACTS[state["person"]][: runtime.context.n_facts]}


def fan_out(state: Served) -> list[Send]:
    return [Send("look", {"fact": fact}) for fact in state["facts"]]


def look(arg: dict[str, Any], runtime: Runtime[ServedConfig]) -> dict[str, Any]:
    """Word one fact: as it is, or only its city."""
    fact = arg["fact"]
    return {"found": [fact.split()[-1] if runtime.context.wording == "city" else fact]}


def compose(state: Served, runtime: Runtime[ServedConfig]) -> dict[str, Any]:
    """Draft the answer from the first or the last fact found."""
    found = state["found"]
    return {"draft": found[0] if runtime.context.pick == "first" else found[-1]}


def route(state: Served) -> Literal["trim", "finish"]:
    return "trim" if len(state["draft"].split()) > MAX_DRAFT else "finish"


def trim(state: Served) -> dict[str, Any]:
    """Keep the draft's last word."""
    return {"draft": state["draft"].split()[-1]}


def finish(state: Served) -> dict[str, Any]:
    return {"answer": state["draft"]}


def builder() -> StateGraph:
    g = StateGraph(Served, context_schema=ServedConfig)
    g.add_node("plan", plan)
    g.add_node("look", look)
    g.add_node("compose", compose)
    g.add_node("trim", trim)
    g.add_node("finish", finish)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", fan_out, ["look"])
    g.add_edge("look", "compose")
    g.add_conditional_edges("compose", route)
    g.add_edge("trim", "finish")
    g.add_edge("finish", END)
    return g


graph = builder().compile()


def metric(example: Example, output: dict[str, Any]) -> float:
    """1 for the city the person works in, 0.5 for another of their cities."""
    answer = output.get("answer")
    if answer == example.labels["answer"]:
        return 1.0
    return 0.5 if any(fact.endswith(f" {answer}") for fact in FACTS[example.inputs["person"]]) else 0.0


def examples() -> list[Example]:
    """Where each person works; four questions per person (keys differ)."""
    return [Example(f"{p}-{i}", {"person": p}, {"answer": facts[1].split()[-1]})
            for i in range(4) for p, facts in FACTS.items()]

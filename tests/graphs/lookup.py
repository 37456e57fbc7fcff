"""A small real system for loop tests, with no LLM: retrieve facts, then answer.

Two knobs with real headroom: the retriever ranks the relevant fact first, second or
third, so ``top_k`` (starting at 1) must reach 3 to always find it, and ``style``
starts at "shout" (upper-case answers, which the exact-match metric rejects). The best
config is ``top_k = 3`` and ``style = "plain"``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg import Choice, IntRange
from optimas_lg.data import Example

NAMES = ["alda", "boris", "cleo", "dario", "elin", "faro", "gita", "hugo", "ines", "jonas",
         "kira", "lars", "mila", "nils", "olga", "piet", "quin", "rosa", "sven", "tove"]
CITIES = ["oslo", "lima", "kyiv", "doha", "riga", "baku", "bern", "lund", "nice", "pisa"]


def _kb(seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    return {name: rng.choice(CITIES) for name in NAMES}


KB = _kb()


class State(TypedDict, total=False):
    question: str
    facts: list[str]
    answer: str


@dataclass
class Config:
    top_k: Annotated[int, IntRange(1, 3, node="retrieve")] = 1
    style: Annotated[str, Choice(["shout", "plain"], node="answer")] = "shout"


def retrieve(state: State, runtime: Runtime[Config]) -> dict:
    """Look up facts; the relevant one is ranked first, second or third."""
    name = state["question"].split()[2]
    others = [f"{n} lives in {c}" for n, c in KB.items() if n != name][:2]
    rank = NAMES.index(name) % 3
    facts = others[:rank] + [f"{name} lives in {KB[name]}"] + others[rank:]
    return {"facts": facts[: runtime.context.top_k]}


def answer(state: State, runtime: Runtime[Config]) -> dict:
    """Answer with the city of the fact about the person asked about."""
    name = state["question"].split()[2]
    found = [f for f in state["facts"] if f.startswith(name + " ")]
    if not found:
        return {"answer": "unknown"}
    city = found[0].split()[-1]
    return {"answer": city.upper() if runtime.context.style == "shout" else city}


builder = StateGraph(State, context_schema=Config)
builder.add_node("retrieve", retrieve)
builder.add_node("answer", answer)
builder.add_edge(START, "retrieve")
builder.add_edge("retrieve", "answer")
builder.add_edge("answer", END)


def metric(example: Example, output: dict) -> float:
    return float(output.get("answer") == example.labels["answer"])


def examples() -> list[Example]:
    return [Example(name, {"question": f"where does {name} live?"}, {"answer": city}) for name, city in KB.items()]

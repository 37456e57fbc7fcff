"""Two small real systems (no LLM) whose answer node takes few-shot demonstrations.

The node stands in for a small model: it knows every person's city but answers in the
format its prompt's examples show. Without demos, option ``"a"`` of its ``model`` knob
answers half the questions tersely ("oslo", which the exact-match metric accepts) and
the other half as a sentence ("it is oslo", rejected); option ``"b"`` always answers as a
sentence. Terse demos (from the runs that scored well) make ``helps`` answer every
question tersely: the best config. ``hurts`` over-copies: with demos in its prompt it
answers tersely but with the last demo's city, which looks right to a reward that has
learned the format and is wrong on the global metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg import Choice, Demos
from optimas_lg.data import Example
from optimas_lg.graph.demos import demo_text

CITIES = ["oslo", "lima", "kyiv", "doha", "riga", "baku", "bern", "lund", "nice", "pisa"]
NAMES = [f"{a}{b}" for a in ("al", "bo", "ce", "di", "el", "fa", "gi", "ha") for b in ("ra", "to", "mi", "ne", "su")]
KB = {name: CITIES[(7 * i) % len(CITIES)] for i, name in enumerate(NAMES)}


class State(TypedDict, total=False):
    question: str
    answer: str


@dataclass
class Config:
    model: Annotated[str, Choice(["a", "b"], node="answer")] = "a"
    answer_demos: Annotated[list[dict], Demos(node="answer", k=3)] = field(default_factory=list)


def _builder(copies: bool) -> StateGraph:
    def answer(state: State, runtime: Runtime[Config]) -> dict:
        """Answer where the person lives, in the format of the prompt's examples."""
        ctx = runtime.context
        name = state["question"].split()[2]
        city = KB[name]
        shown = [line.removeprefix("Output: ") for line in demo_text(ctx.answer_demos, "question", "answer")
                 .splitlines() if line.startswith("Output: ")]
        if shown:
            terse = all(len(s.split()) == 1 for s in shown)
            city = shown[-1].split()[-1] if copies else city
        else:
            terse = ctx.model == "a" and NAMES.index(name) % 2 == 0
        return {"answer": city if terse else f"it is {city}"}

    builder = StateGraph(State, context_schema=Config)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder


helps = _builder(copies=False)
hurts = _builder(copies=True)


def metric(example: Example, output: dict) -> float:
    return float(output.get("answer") == example.labels["answer"])


def examples() -> list[Example]:
    return [Example(name, {"question": f"where does {name} live?"}, {"answer": city}) for name, city in KB.items()]

"""A small real system whose one node calls a chat model chosen by a knob, for cost tests.

``ScriptedChat`` stands in for hosted models: ``acme/large`` and ``acme/lite`` know every
person's city; ``acme/small`` misses the people whose index in ``NAMES`` is a multiple of
``SMALL_MISSES_EVERY`` (it answers "unknown"). ``builder`` chooses between large and
small, ``with_lite`` among all three. All report token usage as a provider
does (prompt tokens = words sent x 10, 5 completion tokens), so the recorder stores
tokens per model and a price table can turn them into money.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg import Choice
from optimas_lg.data import Example

CITIES = ["oslo", "lima", "kyiv", "doha", "riga", "baku", "bern", "lund", "nice", "pisa"]
NAMES = [f"{a}{b}" for a in ("al", "bo", "ce", "di", "el", "fa", "gi", "ha") for b in ("ra", "to", "mi", "ne", "su")]
KB = {name: CITIES[(3 * i) % len(CITIES)] for i, name in enumerate(NAMES)}
SMALL_MISSES_EVERY = 2


class ScriptedChat(BaseChatModel):
    """A deterministic chat model named ``model`` (recorded as the LLM call's model)."""

    model: str

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text = str(messages[-1].content)
        name = text.split()[2]
        knows = self.model != "acme/small" or NAMES.index(name) % SMALL_MISSES_EVERY
        reply = AIMessage(KB[name] if knows else "unknown",
                          usage_metadata={"input_tokens": 10 * len(text.split()), "output_tokens": 5,
                                          "total_tokens": 10 * len(text.split()) + 5})
        return ChatResult(generations=[ChatGeneration(message=reply)])

    @property
    def _llm_type(self) -> str:
        return "scripted"


class State(TypedDict, total=False):
    question: str
    answer: str


@dataclass
class Config:
    answer_model: Annotated[str, Choice(["acme/large", "acme/small"], node="answer")] = "acme/large"


@dataclass
class ConfigWithLite:
    answer_model: Annotated[str, Choice(["acme/large", "acme/small", "acme/lite"], node="answer")] = "acme/large"


def answer(state: State, runtime: Runtime[Config]) -> dict:
    """Ask the chosen model where the person lives."""
    reply = ScriptedChat(model=runtime.context.answer_model).invoke([HumanMessage(state["question"])])
    return {"answer": str(reply.content)}


def _builder(config: type) -> StateGraph:
    builder = StateGraph(State, context_schema=config)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder


builder = _builder(Config)
with_lite = _builder(ConfigWithLite)


def metric(example: Example, output: dict) -> float:
    return float(output.get("answer") == example.labels["answer"])


def examples() -> list[Example]:
    return [Example(name, {"question": f"where does {name} live?"}, {"answer": city}) for name, city in KB.items()]

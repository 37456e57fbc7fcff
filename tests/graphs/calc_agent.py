"""An agent built with ``langchain.agents.create_agent`` (issue 13): a ReAct loop over one
tool, its system prompt chosen by a knob through a ``dynamic_prompt`` middleware that reads
the run's context, so the knob belongs to the agent's ``model`` node.

``CalcChat`` stands in for a small chat model (a fake, as only tests use it): told to use
the calculator it calls ``add`` and answers with the result; told to answer from memory it
guesses the sum to the nearest ten. Headroom: the default policy scores 0.1 on
``examples()`` (the sums that are multiples of ten), the calculator policy 1.0.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Annotated, Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, dynamic_prompt
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

from optimas_lg import Choice
from optimas_lg.data import Example

MEMORY, CALCULATOR = "Answer from memory.", "Use the add tool for arithmetic, then answer with its result."


@dataclass
class AgentConfig:
    system_prompt: Annotated[str, Choice([MEMORY, CALCULATOR], node="model")] = MEMORY


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class CalcChat(BaseChatModel):
    """Calls ``add`` when its system prompt says to use it; otherwise guesses to the nearest ten."""

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        system = " ".join(str(m.content) for m in messages if isinstance(m, SystemMessage))
        results = [m for m in messages if isinstance(m, ToolMessage)]
        question = next(m for m in messages if isinstance(m, HumanMessage))
        a, b = (int(n) for n in re.findall(r"\d+", str(question.content))[:2])
        if results:
            message = AIMessage(str(results[-1].content))
        elif "add tool" in system:
            message = AIMessage("", tool_calls=[{"name": "add", "args": {"a": a, "b": b}, "id": "call-1"}])
        else:
            message = AIMessage(str(round((a + b) / 10) * 10))
        message.usage_metadata = {"input_tokens": sum(len(str(m.content).split()) for m in messages),
                                  "output_tokens": 1, "total_tokens": 0}
        return ChatResult(generations=[ChatGeneration(message=message)])

    @property
    def _llm_type(self) -> str:
        return "fake-calc"

    def bind_tools(self, tools: Any, **kwargs: Any) -> CalcChat:
        return self


@dynamic_prompt
def policy(request: ModelRequest) -> str:
    """The system prompt is the run's knob value."""
    context = request.runtime.context
    return context.system_prompt if context is not None else MEMORY


graph = create_agent(CalcChat(), tools=[add], middleware=[policy], context_schema=AgentConfig)


def examples(n: int = 20, seed: int = 0) -> list[Example]:
    """Sums of two numbers below 50, one in ten a multiple of ten (which the guess gets right)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a = rng.randrange(10, 50)
        b = (10 - a % 10) + 10 * rng.randrange(1, 4) if i % 10 == 0 else rng.randrange(11, 50, 2)
        if i % 10 and (a + b) % 10 == 0:
            b += 1
        out.append(Example(f"q{i}", {"messages": [{"role": "user", "content": f"What is {a} plus {b}?"}]},
                           {"answer": str(a + b)}))
    return out


def exact(example: Example, output: dict[str, Any]) -> float:
    return float(str(output["messages"][-1].content).strip() == example["answer"])

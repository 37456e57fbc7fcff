"""The PubMedQA graph: ``analyst`` (abstract -> short analysis) then ``solver`` (-> yes/no/maybe)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg.graph.knobs import Choice, Prompt
from optimas_lg.llm import chat_model
from optimas_lg.llm.registry import known_models

LOCAL_MODEL = "local/smollm2-135m"
HOSTED_MODEL = "openai/gpt-4o-mini"
ANALYST_MAX_TOKENS = 48
SOLVER_MAX_TOKENS = 16


def model_options() -> list[str]:
    """The default local model, the other local models installed here, and a hosted one when
    ``OPENAI_API_KEY`` is set."""
    hosted = [HOSTED_MODEL] if os.environ.get("OPENAI_API_KEY") else []
    return list(dict.fromkeys([LOCAL_MODEL, *known_models(), *hosted]))


MODELS = model_options()


class State(TypedDict, total=False):
    question: str
    context: list[str]  # the abstract's sections
    analysis: str
    answer: str


@dataclass
class AgentConfig:
    analyst_prompt: Annotated[str, Prompt(node="analyst")] = (
        "You read medical research abstracts. In one or two sentences, state the findings "
        "of the abstract that answer the question.")
    analyst_model: Annotated[str, Choice(MODELS, node="analyst")] = LOCAL_MODEL
    solver_prompt: Annotated[str, Prompt(node="solver")] = (
        "Answer the research question with one word: yes, no or maybe.")
    solver_model: Annotated[str, Choice(MODELS, node="solver")] = LOCAL_MODEL


def _ask(model: str, instruction: str, content: str, max_tokens: int) -> str:
    llm = chat_model(model, temperature=0.0, max_tokens=max_tokens)
    return str(llm.invoke([SystemMessage(instruction), HumanMessage(content)]).content).strip()


def analyst(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    content = f"Question: {state['question']}\n\nAbstract:\n" + "\n".join(state["context"])
    return {"analysis": _ask(config.analyst_model, config.analyst_prompt, content, ANALYST_MAX_TOKENS)}


def solver(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    content = f"Question: {state['question']}\nFindings: {state['analysis']}\nAnswer (yes, no or maybe):"
    return {"answer": _ask(config.solver_model, config.solver_prompt, content, SOLVER_MAX_TOKENS)}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_sequence([analyst, solver])
builder.add_edge(START, "analyst")
builder.add_edge("solver", END)
graph = builder.compile()

"""The Amazon graph: ``session_analyzer`` -> ``candidate_profiler`` -> ``decider`` (candidate 1-4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg.graph.knobs import LoRA, Prompt, model_name
from optimas_lg.llm import chat_model

LOCAL_MODEL = "local/smollm2-135m"
ANALYZER_MAX_TOKENS = 48
PROFILER_MAX_TOKENS = 48
DECIDER_MAX_TOKENS = 16
ANALYZER_INSTRUCTION = "Describe in one sentence what kind of product this shopper is looking for."
PROFILER_INSTRUCTION = "For each numbered candidate, say in a few words how well it fits the shopper."


class State(TypedDict, total=False):
    question: str  # the task instruction and the session's clicked product titles
    choices: list[str]  # 4 candidate product titles
    session_summary: str
    candidate_profiles: str
    answer: str


@dataclass
class AgentConfig:
    analyzer_adapter: Annotated[str | None, LoRA(base=LOCAL_MODEL, node="session_analyzer")] = None
    profiler_adapter: Annotated[str | None, LoRA(base=LOCAL_MODEL, node="candidate_profiler")] = None
    decider_prompt: Annotated[str, Prompt(node="decider")] = (
        "Pick the candidate the shopper will most likely view next. Reply with its number (1-4) only.")
    decider_model: str = LOCAL_MODEL  # e.g. "openai/gpt-4o-mini"


def _ask(model: str, instruction: str, content: str, max_tokens: int) -> str:
    llm = chat_model(model, temperature=0.0, max_tokens=max_tokens)
    return str(llm.invoke([SystemMessage(instruction), HumanMessage(content)]).content).strip()


def _candidates(state: State) -> str:
    return "\n".join(f"{i}. {title}" for i, title in enumerate(state["choices"], 1))


def session_analyzer(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    model = model_name(LOCAL_MODEL, config.analyzer_adapter)
    return {"session_summary": _ask(model, ANALYZER_INSTRUCTION, state["question"], ANALYZER_MAX_TOKENS)}


def candidate_profiler(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    model = model_name(LOCAL_MODEL, config.profiler_adapter)
    content = f"Shopper: {state['session_summary']}\n\nCandidates:\n{_candidates(state)}"
    return {"candidate_profiles": _ask(model, PROFILER_INSTRUCTION, content, PROFILER_MAX_TOKENS)}


def decider(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    content = (f"Shopper: {state['session_summary']}\nNotes: {state['candidate_profiles']}\n\n"
               f"Candidates:\n{_candidates(state)}\n\nNumber:")
    return {"answer": _ask(config.decider_model, config.decider_prompt, content, DECIDER_MAX_TOKENS)}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_sequence([session_analyzer, candidate_profiler, decider])
builder.add_edge(START, "session_analyzer")
builder.add_edge("decider", END)
graph = builder.compile()

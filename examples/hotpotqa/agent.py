"""The HotpotQA graph: ``rewrite`` -> ``retrieve`` (BM25, top k) -> ``extract`` -> ``respond``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from examples.hotpotqa.retrieve import top_k_paragraphs
from optimas_lg.graph.knobs import IntRange, Prompt
from optimas_lg.llm import chat_model

LOCAL_MODEL = "local/smollm2-135m"
REWRITE_MAX_TOKENS = 32
EXTRACT_MAX_TOKENS = 48
ANSWER_MAX_TOKENS = 16
PARAGRAPH_CHARS = 600  # each retrieved paragraph is cut to this length for the extractor


class State(TypedDict, total=False):
    question: str
    paragraphs: list[str]  # the question's 10 candidate paragraphs, "Title: text"
    query: str
    passages: list[str]
    evidence: str
    answer: str


@dataclass
class AgentConfig:
    rewrite_prompt: Annotated[str, Prompt(node="rewrite")] = (
        "Rewrite the question as a short search query made of its key names and terms.")
    top_k: Annotated[int, IntRange(1, 10, node="retrieve")] = 3
    extract_prompt: Annotated[str, Prompt(node="extract")] = (
        "Copy the facts from the passages that help answer the question, in one or two sentences.")
    answer_prompt: Annotated[str, Prompt(node="respond")] = (
        "Answer the question with a few words taken from the evidence. Give only the answer.")
    model: str = LOCAL_MODEL  # the model of every LLM node; e.g. "openai/gpt-4o-mini"


def _ask(model: str, instruction: str, content: str, max_tokens: int) -> str:
    llm = chat_model(model, temperature=0.0, max_tokens=max_tokens)
    return str(llm.invoke([SystemMessage(instruction), HumanMessage(content)]).content).strip()


def rewrite(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    return {"query": _ask(config.model, config.rewrite_prompt, f"Question: {state['question']}\nQuery:",
                          REWRITE_MAX_TOKENS)}


def retrieve(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    query = state.get("query") or state["question"]
    return {"passages": top_k_paragraphs(query, state["paragraphs"], config.top_k)}


def extract(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    passages = "\n".join(f"- {p[:PARAGRAPH_CHARS]}" for p in state["passages"])
    content = f"Question: {state['question']}\n\nPassages:\n{passages}\n\nFacts:"
    return {"evidence": _ask(config.model, config.extract_prompt, content, EXTRACT_MAX_TOKENS)}


def respond(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    content = f"Question: {state['question']}\nEvidence: {state['evidence']}\nAnswer:"
    return {"answer": _ask(config.model, config.answer_prompt, content, ANSWER_MAX_TOKENS)}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_sequence([rewrite, retrieve, extract, respond])
builder.add_edge(START, "rewrite")
builder.add_edge("respond", END)
graph = builder.compile()

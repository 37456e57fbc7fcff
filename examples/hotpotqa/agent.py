"""The HotpotQA graph: ``rewrite`` -> ``retrieve`` (BM25, top k) -> ``extract`` -> ``respond``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from examples.hotpotqa.retrieve import top_k_paragraphs
from optimas_lg.graph.demos import demo_messages
from optimas_lg.graph.knobs import IntRange, Prompt
from optimas_lg.llm import chat_model

LOCAL_MODEL = "local/smollm2-135m"
REWRITE_MAX_TOKENS = 32
EXTRACT_MAX_TOKENS = 48
ANSWER_MAX_TOKENS = 16
PARAGRAPH_CHARS = 600  # each retrieved paragraph is cut to this length for the extractor

# Made-up turns that show the responder the reply format. Without them SmolLM2-135M answered in
# sentences ("The answer is: ...", or the evidence echoed), which token F1 scores near zero.
FORMAT_DEMOS = (
    ("Which city hosted the 1992 Summer Olympics?", "The 1992 Summer Olympics were held in Barcelona, Spain.",
     "Barcelona"),
    ("Were both bands formed in England?", "Blur was formed in London. Pearl Jam was formed in Seattle.", "no"),
)


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


def _ask(model: str, instruction: str, turns: list[BaseMessage], max_tokens: int) -> str:
    llm = chat_model(model, temperature=0.0, max_tokens=max_tokens)
    return str(llm.invoke([SystemMessage(instruction), *turns]).content).strip()


def _request(question: str, evidence: str) -> str:
    return f"Question: {question}\nEvidence: {evidence}\nAnswer:"


def respond_turns(question: str, evidence: str) -> list[BaseMessage]:
    """The responder's request: the format demos as earlier turns, then the question and evidence."""
    demos = [{"input": {"text": _request(*shown)}, "output": {"text": reply}} for *shown, reply in FORMAT_DEMOS]
    return [*demo_messages(demos), HumanMessage(_request(question, evidence))]


def rewrite(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    request = HumanMessage(f"Question: {state['question']}\nQuery:")
    return {"query": _ask(config.model, config.rewrite_prompt, [request], REWRITE_MAX_TOKENS)}


def retrieve(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    # The rewrite adds terms to the question rather than replacing it: SmolLM2's rewrites often
    # drop the question's names or echo the instruction, and then BM25 ranks the wrong paragraphs.
    query = f"{state['question']} {state.get('query', '')}"
    return {"passages": top_k_paragraphs(query, state["paragraphs"], config.top_k)}


def extract(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    passages = "\n".join(f"- {p[:PARAGRAPH_CHARS]}" for p in state["passages"])
    content = f"Question: {state['question']}\n\nPassages:\n{passages}\n\nFacts:"
    return {"evidence": _ask(config.model, config.extract_prompt, [HumanMessage(content)], EXTRACT_MAX_TOKENS)}


def respond(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    reply = _ask(config.model, config.answer_prompt, respond_turns(state["question"], state["evidence"]),
                 ANSWER_MAX_TOKENS)
    return {"answer": reply.splitlines()[0] if reply else reply}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_sequence([rewrite, retrieve, extract, respond])
builder.add_edge(START, "rewrite")
builder.add_edge("respond", END)
graph = builder.compile()

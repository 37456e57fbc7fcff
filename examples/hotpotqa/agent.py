"""The HotpotQA graph: ``rewrite`` -> ``retrieve`` (BM25, top k) -> ``extract`` -> ``respond``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from examples.hotpotqa.retrieve import top_k_paragraphs
from examples.models import LOCAL_MODEL, model_options
from optimas_lg.graph.demos import demo_messages
from optimas_lg.graph.knobs import Choice, Demos, IntRange, Prompt
from optimas_lg.llm import chat_model

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

MODELS = model_options()


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
    rewrite_model: Annotated[str, Choice(MODELS, node="rewrite")] = LOCAL_MODEL
    top_k: Annotated[int, IntRange(1, 10, node="retrieve")] = 3
    extract_prompt: Annotated[str, Prompt(node="extract")] = (
        "Copy the facts from the passages that help answer the question, in one or two sentences.")
    extract_model: Annotated[str, Choice(MODELS, node="extract")] = LOCAL_MODEL
    answer_prompt: Annotated[str, Prompt(node="respond")] = (
        "Answer the question with a few words taken from the evidence. Give only the answer.")
    respond_model: Annotated[str, Choice(MODELS, node="respond")] = LOCAL_MODEL
    # recorded respond calls of well-scored training runs, shown after the format demos
    answer_demos: Annotated[list[dict], Demos(node="respond", k=2)] = field(default_factory=list)


def _ask(model: str, instruction: str, turns: list[BaseMessage], max_tokens: int) -> str:
    llm = chat_model(model, temperature=0.0, max_tokens=max_tokens)
    return str(llm.invoke([SystemMessage(instruction), *turns]).content).strip()


def _request(question: str, evidence: str) -> str:
    return f"Question: {question}\nEvidence: {evidence}\nAnswer:"


def _turn(question: str, evidence: str, answer: str) -> dict:
    return {"input": {"text": _request(question, evidence)}, "output": {"text": answer}}


def respond_turns(question: str, evidence: str, demos: Sequence[dict] = ()) -> list[BaseMessage]:
    """The responder's request: the format demos and then ``demos`` (recorded calls of this node:
    input ``question`` and ``evidence``, output ``answer``) as earlier turns, then the question."""
    shown = [_turn(*fixed) for fixed in FORMAT_DEMOS]
    shown += [_turn(d["input"].get("question", ""), d["input"].get("evidence", ""), d["output"].get("answer", ""))
              for d in demos]
    return [*demo_messages(shown), HumanMessage(_request(question, evidence))]


def rewrite(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    request = HumanMessage(f"Question: {state['question']}\nQuery:")
    return {"query": _ask(config.rewrite_model, config.rewrite_prompt, [request], REWRITE_MAX_TOKENS)}


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
    return {"evidence": _ask(config.extract_model, config.extract_prompt, [HumanMessage(content)], EXTRACT_MAX_TOKENS)}


def respond(state: State, runtime: Runtime[AgentConfig]) -> State:
    config = runtime.context or AgentConfig()
    turns = respond_turns(state["question"], state["evidence"], config.answer_demos)
    reply = _ask(config.respond_model, config.answer_prompt, turns, ANSWER_MAX_TOKENS)
    return {"answer": reply.splitlines()[0] if reply else reply}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_sequence([rewrite, retrieve, extract, respond])
builder.add_edge(START, "rewrite")
builder.add_edge("respond", END)
graph = builder.compile()

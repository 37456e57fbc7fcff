"""The offline QA agent: rewrite the question into a search query, retrieve facts from the
generated knowledge base, answer from them. Three nodes, two LLM calls, eight knobs.

Every knob's default is a plausible first try that leaves room to improve: a bare
rewrite prompt, one fact and one hop of retrieval (too little for two-hop questions),
a bare answer prompt that lets the small model ramble, no worked examples, the whole
reply taken as the answer, and no adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Annotated

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from examples.offline_qa.generate import DATA_DIR, SPLIT_SIZES
from examples.offline_qa.retriever import BM25
from optimas_lg.data import Example, load_examples, read_rows
from optimas_lg.graph.knobs import Choice, Demos, IntRange, LoRA, Prompt, model_name
from optimas_lg.llm import chat_model

BASE_MODEL = "local/smollm2-135m"
REWRITE_TOKENS = 24
ANSWER_TOKENS = 16
SPLITS = tuple(SPLIT_SIZES)


@dataclass
class AgentConfig:
    """The knobs optimas-lg may tune; a node reads the ones for it from ``runtime.context``."""

    rewrite_prompt: Annotated[str, Prompt(node="rewrite")] = "Rewrite the question as a search query."
    query_mode: Annotated[str, Choice(["rewrite", "question", "both"], node="rewrite")] = "rewrite"
    top_k: Annotated[int, IntRange(1, 6, node="retrieve")] = 1
    hops: Annotated[int, IntRange(1, 3, node="retrieve")] = 1
    answer_prompt: Annotated[str, Prompt(node="answer")] = "Answer the question."
    answer_demos: Annotated[list[dict], Demos(node="answer", k=2)] = field(default_factory=list)
    answer_adapter: Annotated[str | None, LoRA(base=BASE_MODEL, node="answer")] = None
    answer_format: Annotated[str, Choice(["sentence", "entity"], node="answer")] = "sentence"


class State(TypedDict, total=False):
    question: str
    query: str
    facts: list[str]
    answer: str


def _config(runtime: Runtime[AgentConfig]) -> AgentConfig:
    # runtime.context is None when the caller passes no context: use the defaults then.
    return runtime.context if runtime.context is not None else AgentConfig()


def llm(name: str, max_tokens: int) -> BaseChatModel:
    """The chat model a node calls; tests replace this to run without the model server."""
    return chat_model(name, temperature=0.0, max_tokens=max_tokens)


@cache
def knowledge_base() -> BM25:
    return BM25([row["text"] for row in read_rows(DATA_DIR / "kb.jsonl")])


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def rewrite(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Turn the question into the text the retriever searches with."""
    cfg = _config(runtime)
    question = state["question"]
    if cfg.query_mode == "question":
        return {"query": question}
    reply = llm(BASE_MODEL, REWRITE_TOKENS).invoke(f"{cfg.rewrite_prompt}\n\nQuestion: {question}", stop=["\n"])
    query = _first_line(str(reply.content))
    return {"query": f"{question} {query}" if cfg.query_mode == "both" else query}


def retrieve(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Search the knowledge base with the query, following bridge entities for extra hops."""
    cfg = _config(runtime)
    return {"facts": knowledge_base().multi_hop(state["query"], cfg.top_k, cfg.hops)}


def _trailing_entity(text: str) -> str:
    """The run of capitalized words that ends a reply ("X was born in Bivol." -> "Bivol")."""
    words = text.rstrip(" .!?\"'").split()
    run: list[str] = []
    for word in reversed(words):
        if not word[:1].isupper():
            break
        run.insert(0, word.strip(",;:"))
    return " ".join(run[-2:]) if run else text


def _task(facts: list[str] | None, question: str) -> str:
    return f"Facts:\n{chr(10).join(facts or []) or '(none found)'}\n\nQuestion: {question}"


def _worked_examples(demos: list[dict]) -> str:
    """Each demo (a recorded call of this node: its input state and its output) as the
    facts, question and answer it showed, before the real task."""
    return "".join(f"{_task(d['input'].get('facts'), d['input'].get('question', ''))}\nAnswer: "
                   f"{d['output'].get('answer', '')}\n\n" for d in demos)


def answer(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Answer the question from the retrieved facts (a full reply or only its final name),
    after the worked examples of ``answer_demos``, if any."""
    cfg = _config(runtime)
    prompt = f"{cfg.answer_prompt}\n\n{_worked_examples(cfg.answer_demos)}{_task(state['facts'], state['question'])}"
    reply = llm(model_name(BASE_MODEL, cfg.answer_adapter), ANSWER_TOKENS).invoke(prompt, stop=["\n"])
    text = _first_line(str(reply.content))
    return {"answer": _trailing_entity(text) if cfg.answer_format == "entity" else text}


builder = StateGraph(State, context_schema=AgentConfig)
builder.add_node("rewrite", rewrite)
builder.add_node("retrieve", retrieve)
builder.add_node("answer", answer)
builder.add_edge(START, "rewrite")
builder.add_edge("rewrite", "retrieve")
builder.add_edge("retrieve", "answer")
builder.add_edge("answer", END)
graph = builder.compile()


def load_split(name: str) -> list[Example]:
    """The committed ``train``, ``val`` or ``test`` questions; labels hold the gold answer."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; use one of {SPLITS}")
    return load_examples(DATA_DIR / f"{name}.jsonl", inputs=["question"], labels=["answer", "hops", "support"])

"""A two-LLM-node graph whose first node has nothing to sample but its prompt: only LLM
sampling can give it distinct candidate outputs.

Both nodes call one module-level ``ExploringChatOpenAI`` (built once, at import, as many
agents do) whose HTTP transport is a fake OpenAI endpoint: greedy requests (temperature
0) rewrite every question to ``q0``; sampled ones to ``q<seed % 4>``. ``answer`` upper-cases
the query, and the metric wants ``Q2``, so only a sampled rewrite can score. Every request
body is kept in ``REQUESTS`` for the tests to inspect.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Annotated

import httpx
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg import Prompt
from optimas_lg.data import Example
from optimas_lg.llm.exploration import ExploringChatOpenAI

REQUESTS: list[dict] = []
_LOCK = threading.Lock()


def reply(body: dict) -> str:
    """What the fake endpoint answers to one request body."""
    prompt = body["messages"][-1]["content"]
    if prompt.startswith("Answer:"):
        return prompt.removeprefix("Answer:").strip().upper()
    return f"q{body['seed'] % 4}" if body.get("temperature") else "q0"


def _handler(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    with _LOCK:
        REQUESTS.append(body)
    return httpx.Response(200, json={
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply(body)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


MODEL = ExploringChatOpenAI(model="fake", api_key="fake", base_url="http://fake.invalid/v1", temperature=0.0,
                            max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(_handler)))


class State(TypedDict, total=False):
    question: str
    query: str
    answer: str


@dataclass
class Config:
    rewrite_prompt: Annotated[str, Prompt(node="rewrite")] = "Rewrite:"


def rewrite(state: State, runtime: Runtime[Config]) -> dict:
    """Rewrite the question into a query (an LLM call)."""
    return {"query": str(MODEL.invoke(f"{runtime.context.rewrite_prompt} {state['question']}").content)}


def answer(state: State) -> dict:
    """Answer from the query (an LLM call)."""
    return {"answer": str(MODEL.invoke(f"Answer: {state['query']}").content)}


builder = StateGraph(State, context_schema=Config)
builder.add_node("rewrite", rewrite)
builder.add_node("answer", answer)
builder.add_edge(START, "rewrite")
builder.add_edge("rewrite", "answer")
builder.add_edge("answer", END)


def metric(example: Example, output: dict) -> float:
    return float(output.get("answer") == example.labels["answer"])


def examples(n: int = 8) -> list[Example]:
    return [Example(f"e{i}", {"question": f"question {i}"}, {"answer": "Q2"}) for i in range(n)]

"""Runs of the user's graph stand alone: no config inherited from an enclosing graph run,
and one event loop per process for async runs (issue 13, "async nodes")."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.execution.replay import rollout_from, run_node
from optimas_lg.execution.runner import event_loop, run_examples
from optimas_lg.graph import serde
from optimas_lg.graph.system import System
from optimas_lg.store import models
from tests.graphs import orders


class Outer(TypedDict, total=False):
    result: Any


class Nodes(BaseCallbackHandler):
    """The graph nodes a callback handler of the outer run is told about."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def on_chain_start(self, serialized: Any, inputs: Any, *, metadata: dict | None = None, **kwargs: Any) -> None:
        self.seen.add((metadata or {}).get("langgraph_node", ""))


def run_inside_loop_graph(home, work) -> Any:
    """Call ``work()`` from a node of a graph checkpointed by a ``SqliteSaver``, as the optimizer loop is.
    The outer run's callbacks must hear of its own node only."""
    builder = StateGraph(Outer)
    builder.add_node("step", lambda state: {"result": work()})
    builder.add_edge(START, "step")
    conn = sqlite3.connect(home / "checkpoints.db", check_same_thread=False)
    nodes = Nodes()
    try:
        graph = builder.compile(checkpointer=SqliteSaver(conn))
        config = {"configurable": {"thread_id": "outer"}, "recursion_limit": 7, "callbacks": [nodes]}
        result = graph.invoke({}, config)["result"]
    finally:
        conn.close()
    assert nodes.seen <= {"", "step"}
    return result


def test_async_runs_inside_a_checkpointed_graph_do_not_inherit_its_config(home, store):
    system = System.load(orders.graph)
    examples = orders.examples(12)
    direct = run_examples(system, examples, orders.resolved, {}, store, progress=False)
    nested = run_inside_loop_graph(home, lambda: run_examples(system, examples, orders.resolved, {}, store,
                                                              progress=False))
    assert nested.n_failed == 0, nested.results[0].error
    assert [r.score for r in nested.results] == [r.score for r in direct.results]
    # the outer graph's thread holds its own step only: no checkpoints of the user's runs
    conn = sqlite3.connect(home / "checkpoints.db")
    namespaces = {ns for (ns,) in conn.execute("select distinct checkpoint_ns from checkpoints")}
    conn.close()
    assert namespaces == {""}


def test_replay_inside_a_checkpointed_graph(home, store):
    system = System.load(orders.graph)
    example = orders.examples(1)[0]
    run_examples(system, [example], orders.resolved, {}, store, progress=False)
    call = store.select(models.NodeCall, models.NodeCall.node == "triage")[0]
    state = serde.from_json(call.inputs)

    def work() -> Any:
        output = run_node(system, "triage", state, {"intent_source": "keywords"})
        return output, rollout_from(system, "triage", state, output, example, orders.resolved,
                                    {"match_slack": 2}, rollouts=2)

    output, rollouts = run_inside_loop_graph(home, work)
    assert output == {"intent": "status"}
    assert [r.error for r in rollouts] == [None, None]


class _OpenAIStub(BaseHTTPRequestHandler):
    """A chat-completions endpoint that keeps connections alive, as a real server does."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"]
        reply = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": text.upper()}}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_model_built_once_serves_every_batch(endpoint, store):
    """An async client keeps its pooled connections on the loop that opened them: with a
    loop per batch, the second batch failed with "Event loop is closed"."""
    model = ChatOpenAI(model="stub", base_url=endpoint, api_key="stub", max_retries=0)

    async def shout(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("shout", shout)
    builder.add_edge(START, "shout")
    system = System.load(builder)
    examples = [Example(str(i), {"messages": [HumanMessage(f"hi {i}")]}) for i in range(4)]

    def metric(example: Example, output: dict[str, Any]) -> float:
        return float(output["messages"][-1].content == f"HI {example.key}")

    for _ in range(3):
        summary = run_examples(system, examples, metric, {}, store, concurrency=2, progress=False)
        assert summary.n_failed == 0, summary.results[0].error
        assert summary.mean == 1.0
    assert event_loop().is_running()

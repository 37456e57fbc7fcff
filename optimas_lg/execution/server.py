"""Run the user's graph on a LangGraph Server (``langgraph dev``, LangGraph Platform) through ``langgraph-sdk``.

The graph's code is still imported here (``System``) for its structure and knobs; a
``Server`` names where it is served. ``ServerGraph`` gives the runner and replay what
they use of a compiled graph, executed on the server:

* ``stream`` starts a run with the knobs as the run's ``context`` (in ``configurable``
  for a graph without a context schema, whose nodes read them there) and yields the ``values`` and
  ``tasks`` events a local ``graph.stream`` yields, read from the server's ``debug``
  stream (which also gives each task its step), subgraphs' tasks included (with their
  ``namespace``), and ``llm`` events: the start and end of each chat model or LLM call,
  from the server's ``events`` stream (``astream_events``). Messages arrive as the
  server's JSON and are rebuilt (``serde.from_wire``), so ``Recorder(from_stream=True)``
  records the same node and LLM calls from them as a local run's callbacks;
* ``thread`` puts a recorded state on a new server thread (``threads.create`` with
  supersteps, the server's form of ``bulk_update_state``): the state written as
  ``__start__``, the tasks that would trigger cleared (``None`` as ``__end__``), then
  the writes of a recorded step, each as its node, so the server's own edges, routers
  and joins continue from there as they would have in the recorded run;
* ``run_alone`` runs one node (or ``Send`` task) on such a thread and stops after it.

Transport and HTTP errors become ``ServerError`` naming the URL and graph; a run that
fails on the server raises ``ServerRunError``, which the runner records as a failed run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import APIStatusError

from optimas_lg.errors import ServerError, ServerRunError
from optimas_lg.graph import serde

START = "__start__"
END = "__end__"
PUSH = "__pregel_push"  # the trigger of a task started by a ``Send``
OVERWRITE = "__overwrite__"  # {OVERWRITE: value} sets a reducer channel instead of reducing into it
STREAM_MODES = ["debug", "values", "events"]
LLM_EVENTS = frozenset({"on_chat_model_start", "on_chat_model_end", "on_llm_start", "on_llm_end"})
JSON_SCALARS = (str, int, float, bool, type(None), list, dict)


@dataclass(frozen=True)
class Server:
    """Where the graph runs: a LangGraph Server's URL and the graph id its ``langgraph.json`` gives it.

    ``timeout`` is per request, in seconds, a whole run included (a run waits in the
    server's queue while its workers are busy). How many runs are in flight at once is
    the caller's ``concurrency`` setting, as for local runs; the server's workers bound
    how many of them execute at once.
    """

    url: str
    graph_id: str
    timeout: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"graph {self.graph_id!r} on {self.url}"


@contextmanager
def server_request(url: str, what: str) -> Iterator[None]:
    """Turn the SDK's transport and HTTP errors into a one-line ``ServerError``."""
    try:
        yield
    except httpx.TransportError as exc:
        raise ServerError(f"cannot reach LangGraph Server at {url} to {what} ({type(exc).__name__}: {exc}); "
                          "is it running (`langgraph dev`) at that URL?") from exc
    except APIStatusError as exc:
        detail = " ".join(str(exc.message).split())
        raise ServerError(f"LangGraph Server at {url} refused to {what}: {exc.status_code} {detail}") from exc


def remote_error(data: Any) -> str:
    """An error as the server reports it (``{"error": type, "message": text}``), as one line."""
    if isinstance(data, dict):
        return f"{data.get('error', 'Error')}: {data.get('message', '')}"
    return str(data)


def _context_json(context: Any) -> dict[str, Any] | None:
    """A run context (dataclass, pydantic model or mapping) as the JSON the server builds it from."""
    if context is None:
        return None
    if dataclasses.is_dataclass(context) and not isinstance(context, type):
        return dataclasses.asdict(context)
    if hasattr(context, "model_dump"):
        return context.model_dump(mode="json")
    return dict(context)


def _llm_end(callbacks: Sequence[BaseCallbackHandler], event: dict[str, Any]) -> None:
    """Tell ``callbacks`` of an LLM call the server streamed the end of (its response message)."""
    output = event["data"].get("output")
    if isinstance(output, BaseMessage):
        generation: Generation = ChatGeneration(message=output)
    else:
        generation = Generation(text=str(output))
    result = LLMResult(generations=[[generation]])
    for handler in callbacks:
        handler.on_llm_end(result, run_id=UUID(event["run_id"]))


class ServerGraph:
    """The served graph, with the calls the runner and replay make on a compiled one."""

    def __init__(self, server: Server, output_channels: Any = None) -> None:
        self.server = server
        self.output_channels = output_channels  # the served graph's, to return what invoke would
        self.client = get_sync_client(url=server.url, timeout=server.timeout)
        self._check()

    def close(self) -> None:
        """Close the HTTP connections (a fork's graph keeps them for the system's lifetime)."""
        self.client.close()

    def _request(self, what: str) -> Any:
        return server_request(self.server.url, what)

    def _check(self) -> None:
        """Fail before any run when the server is down or does not serve the graph (its
        404 names the graphs it serves)."""
        with self._request(f"find graph {self.server.graph_id!r}"):
            self.client.assistants.search(graph_id=self.server.graph_id, limit=1)

    def stream(self, inputs: Any, config: dict[str, Any] | None = None, *, context: Any = None,
               stream_mode: Any = None, command: dict[str, Any] | None = None,
               interrupt_after: Sequence[str] | None = None) -> Iterator[tuple[str, Any]]:
        """Run on the server (on ``config``'s thread if it names one); yield ``("values", state)``
        and ``("tasks", task event + "step" + "namespace")`` as a local ``stream(stream_mode=["values",
        "tasks"])``, and ``("llm", event)`` for each LLM call's start and end."""
        configurable = dict((config or {}).get("configurable") or {})
        thread_id = configurable.pop("thread_id", None)
        # the server takes a context or a configurable, not both: the knobs go where the graph reads them
        legacy = None if context is not None else {
            "configurable": {k: v for k, v in configurable.items() if isinstance(v, JSON_SCALARS)}}
        final: dict[str, Any] = {}  # namespace -> a subgraph's last state: its task's output, as locally
        with self._request(f"run {self.server}"):
            for part in self.client.runs.stream(
                    thread_id, self.server.graph_id, input=serde.to_wire(inputs), command=serde.to_wire(command),
                    context=_context_json(context), config=legacy, stream_mode=STREAM_MODES,
                    stream_subgraphs=True, interrupt_after=list(interrupt_after or []) or None):
                mode, _, namespace = part.event.partition("|")  # "debug|lookup:<task id>" in a subgraph
                if mode == "error":
                    raise ServerRunError(f"run of {self.server} failed: {remote_error(part.data)}")
                if mode == "values" and namespace:
                    final[namespace] = part.data
                elif mode == "values":
                    yield "values", serde.from_wire(part.data)
                elif mode == "debug" and part.data.get("type") in ("task", "task_result"):
                    task = part.data["payload"]
                    inner = f"{namespace}|" * bool(namespace) + f"{task['name']}:{task['id']}"
                    if "result" in task and not task.get("error") and inner in final:
                        task = {**task, "result": final.pop(inner)}  # not only the writes to this graph
                    yield "tasks", {**serde.from_wire(task), "step": part.data["step"], "namespace": namespace}
                elif mode == "events" and part.data.get("event") in LLM_EVENTS:
                    yield "llm", serde.from_wire(part.data)

    def invoke(self, inputs: Any, config: dict[str, Any] | None = None, *, context: Any = None) -> Any:
        """The run's final state, as ``invoke`` returns it."""
        output = None
        for mode, chunk in self.stream(inputs, config, context=context):
            if mode == "values":
                output = chunk
        return output

    def thread(self, seed: dict[str, Any], step: Sequence[tuple[str, Any]] = ()) -> dict[str, Any]:
        """A new server thread holding ``seed`` (channel values, reducer channels already
        wrapped to overwrite) and nothing to run, then ``step``'s ``(node, output)`` writes."""
        supersteps = [{"updates": [{"values": serde.to_wire(seed), "as_node": START}]},
                      {"updates": [{"values": None, "as_node": END}]}]
        if step:
            supersteps.append({"updates": [{"values": serde.to_wire(out), "as_node": name} for name, out in step]})
        with self._request(f"create a thread of {self.server}"):
            thread = self.client.threads.create(supersteps=supersteps, graph_id=self.server.graph_id)
        return {"configurable": {"thread_id": thread["thread_id"]}}

    def delete(self, config: dict[str, Any]) -> None:
        with self._request(f"delete a thread of {self.server}"):
            self.client.threads.delete(config["configurable"]["thread_id"])

    def run_alone(self, node: str, goto: Any, config: dict[str, Any], context: Any) -> Any:
        """Run ``goto`` (a node name, or a ``Send`` to ``node``) on ``config``'s thread; its output.

        Each LLM call's end is handed to ``config``'s callbacks (``on_llm_end``), so a
        ``TokenMeter`` counts the tokens of nodes run alone on the server too."""
        target = goto if isinstance(goto, str) else {"node": goto.node, "input": goto.arg}
        for mode, chunk in self.stream(None, config, context=context, command={"goto": target},
                                       interrupt_after=[node]):
            if mode == "llm" and chunk["event"] in ("on_chat_model_end", "on_llm_end"):
                _llm_end(config.get("callbacks") or [], chunk)
            if mode == "tasks" and not chunk["namespace"] and chunk["name"] == node and "result" in chunk:
                if chunk.get("error"):
                    raise ServerRunError(f"node {node!r} of {self.server} failed: {remote_error(chunk['error'])}")
                return chunk["result"]
        raise ServerRunError(f"node {node!r} of {self.server} did not run when sent to it")

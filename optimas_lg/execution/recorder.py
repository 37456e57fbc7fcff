"""Record every node call of a run into the store, through a LangChain callback handler.

LangGraph reports each node execution as a chain run whose ``name`` equals
``metadata["langgraph_node"]`` and whose tags hold ``graph:step:N``; routing functions
are chain runs directly under it; LLM calls nest under either. A ``Recorder`` is made
per invoke (handlers bound with ``.with_config`` can be dropped, so pass it in
``config["callbacks"]``), keeps its rows in memory while the run goes on, and hands
them to the store's background writer in ``finish`` (the ``Run`` row first, so foreign
keys hold). Handlers run on LangGraph's worker threads; each recorder only touches
its own run, so concurrent runs never mix.

Reads are tracked by ``ReadTracker``, the mapping ``System.compile`` gives each node
instead of a plain state dict.

A run on a LangGraph Server fires no callbacks here: ``Recorder(from_stream=True)``
records its node calls from the ``tasks`` events the server streams (each task's input,
result or error, step and namespace, subgraphs' tasks under the task that ran them) and
its LLM calls from the ``llm`` events (model, messages, response and tokens; the
invocation parameters are not streamed). There the reads are the input's keys (the
server does not track them), routers are not seen, and the ``Send`` packets a step
emitted are rebuilt from the push tasks of the next step (one route row per step, for replay).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID, uuid4

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langgraph.errors import GraphBubbleUp, ParentCommand
from langgraph.types import Send

from optimas_lg.execution.meter import token_usage
from optimas_lg.execution.server import PUSH, remote_error
from optimas_lg.graph import serde
from optimas_lg.graph.reads import ReadTracker
from optimas_lg.store import Store, models
from optimas_lg.store.models import utcnow

STATE_NODE = "__state__"
STREAM_MODES = ["values", "tasks"]


def _input_keys(value: Any) -> list[str]:
    """The keys of a node input that is not tracked: a mapping's keys or a model's fields."""
    if isinstance(value, dict):
        return list(dict.keys(value))
    fields = getattr(type(value), "model_fields", None) or getattr(value, "__dataclass_fields__", None)
    return list(fields or [])


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _step(tags: list[str] | None, prefix: str) -> int | None:
    for tag in tags or ():
        if tag.startswith(prefix):
            return int(tag[len(prefix):])
    return None


class Recorder(BaseCallbackHandler):
    """Callback handler that records one run's node calls, routing decisions and LLM calls.

    ``knobs`` are the knob values in effect; with ``specs`` each node call keeps only
    its own node's knobs. Call ``finish(**run_fields)`` after the invoke to write the
    ``Run`` row and everything recorded.
    """

    run_inline = True  # async runs call it on the event loop, in order, not in an executor

    def __init__(self, store: Store, run_id: str, knobs: Mapping[str, Any] | None = None,
                 specs: Mapping[str, Any] | None = None, *, from_stream: bool = False) -> None:
        self.store = store
        self.from_stream = from_stream
        self._sends: dict[int, list[Any]] = {}  # step -> the Send packets that started its push tasks
        self.run_id = run_id
        knobs = dict(knobs or {})
        self._all_knobs = knobs
        self._node_knobs: dict[str, dict[str, Any]] | None = None
        if specs is not None:
            self._node_knobs = {}
            for name, value in knobs.items():
                self._node_knobs.setdefault(specs[name].node, {})[name] = value
        self._open: dict[UUID, dict[str, Any]] = {}
        self._owner: dict[UUID, str | None] = {}  # LangChain run id -> id of the node call it belongs to
        self._rows: list[tuple[type, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._state: Any = None
        self._task_state: dict[str, Any] = {}
        self.n_node_calls = 0
        self.n_llm_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    # -- chains: nodes and routers -------------------------------------------------
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
        md = metadata or {}
        node = md.get("langgraph_node")
        step = _step(tags, "graph:step:")
        if node is not None and kwargs.get("name") == node and step is not None:
            ns = md.get("langgraph_checkpoint_ns", "")
            namespace, _, segment = ns.rpartition("|")
            call_id = str(run_id)  # LangChain's run id is unique already (and cheaper than a new uuid4)
            self._owner[run_id] = call_id
            top = namespace == ""
            knobs = self._all_knobs if self._node_knobs is None else (self._node_knobs.get(node, {}) if top else {})
            self._open[run_id] = {
                "id": call_id, "run_id": self.run_id, "parent_call_id": owner, "kind": "node", "node": node,
                "namespace": namespace, "step": step, "task_id": segment.partition(":")[2],
                "inputs": serde.to_json(inputs), "reads": [], "output": None, "knobs": knobs,
                "started_at": utcnow(), "latency_s": None, "error": None,
                "_t0": time.perf_counter(), "_input": inputs,
                "_push": md.get("langgraph_path", ("",))[0] == "__pregel_push",
            }
            return
        self._owner[run_id] = owner
        parent = self._open.get(parent_run_id) if parent_run_id is not None else None
        seq = _step(tags, "seq:step:")
        if parent is not None and parent["kind"] == "node" and seq is not None and seq >= 2:
            self._open[run_id] = {
                "id": str(run_id), "run_id": self.run_id, "parent_call_id": parent["id"], "kind": "route",
                "node": parent["node"], "namespace": parent["namespace"], "step": parent["step"],
                "task_id": parent["task_id"], "inputs": None, "reads": [], "output": None, "knobs": {},
                "started_at": utcnow(), "latency_s": None, "error": None,
                "_t0": time.perf_counter(), "_router": kwargs.get("name"),
            }

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._open.pop(run_id, None)
        if call is not None:
            self._close(call, outputs, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._open.pop(run_id, None)
        if call is None:
            return
        if isinstance(error, ParentCommand):  # Command(graph=PARENT): routing, not a failure
            self._close(call, error.args[0], None)
        elif isinstance(error, GraphBubbleUp):
            self._close(call, None, f"interrupted: {error!r}")
        else:
            self._close(call, None, _error_text(error))

    def nodes_slower_than(self, seconds: float) -> list[str]:
        """The nodes with a call that has run (or ran, till it ended or was cancelled) ``seconds`` or more."""
        now = time.perf_counter()
        with self._lock:
            ended = [row for table, row in self._rows if table is models.NodeCall]
        slow = [c["node"] for c in list(self._open.values()) if c["kind"] == "node" and now - c["_t0"] >= seconds]
        slow += [c["node"] for c in ended if c["kind"] == "node" and (c["latency_s"] or 0.0) >= seconds]
        return sorted(set(slow))

    def _close(self, call: dict[str, Any], output: Any, error: str | None) -> None:
        call["latency_s"] = time.perf_counter() - call.pop("_t0")
        call["error"] = error
        if call["kind"] == "route":
            call["output"] = {"router": call.pop("_router"), "value": serde.to_json(output)}
        else:
            call["output"] = serde.to_json(output)
            value = call.pop("_input")
            call["reads"] = sorted(value.reads) if isinstance(value, ReadTracker) else _input_keys(value)
            call["_input_keys"] = _input_keys(value)
            self.n_node_calls += 1
        self._rows.append((models.NodeCall, call))

    # -- tools and retrievers only pass ownership down to nested LLM calls ----------
    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                      **kwargs: Any) -> None:
        self._owner[run_id] = self._owner.get(parent_run_id) if parent_run_id is not None else None

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                           **kwargs: Any) -> None:
        self._owner[run_id] = self._owner.get(parent_run_id) if parent_run_id is not None else None

    # -- LLM calls ------------------------------------------------------------------
    def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                            **kwargs: Any) -> None:
        self._llm_start(run_id, parent_run_id, serde.to_json(messages), metadata, kwargs)

    def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID, parent_run_id: UUID | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._llm_start(run_id, parent_run_id, list(prompts), metadata, kwargs)

    def _llm_start(self, run_id: UUID, parent_run_id: UUID | None, messages: Any,
                   metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        params = kwargs.get("invocation_params") or {}
        model = (params.get("model") or params.get("model_name") or (metadata or {}).get("ls_model_name")
                 or kwargs.get("name") or params.get("_type") or "")
        owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
        self._open_llm(run_id, owner, str(model), messages, {k: v for k, v in params.items() if k != "tools"})

    def _open_llm(self, key: Any, owner: str | None, model: str, messages: Any, params: dict[str, Any]) -> None:
        self._open[key] = {
            "id": str(key), "run_id": self.run_id, "model": model, "messages": messages, "node_call_id": owner,
            "params": serde.to_json(params), "response": None, "prompt_tokens": None, "completion_tokens": None,
            "started_at": utcnow(), "latency_s": None, "error": None, "_t0": time.perf_counter(),
        }

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._open.pop(run_id, None)
        if call is None:
            return
        gens = response.generations[0] if response.generations else []
        self._llm_end(call, [g.message if isinstance(g, ChatGeneration) else g.text for g in gens],
                      token_usage(response))

    def _llm_end(self, call: dict[str, Any], outputs: list[Any], tokens: tuple[int | None, int | None]) -> None:
        call["response"] = serde.to_json(outputs)
        call.update(prompt_tokens=tokens[0], completion_tokens=tokens[1])
        self._llm_close(call, None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._open.pop(run_id, None)
        if call is not None:
            self._llm_close(call, _error_text(error))

    def _llm_close(self, call: dict[str, Any], error: str | None) -> None:
        call["latency_s"] = time.perf_counter() - call.pop("_t0")
        call["error"] = error
        with self._lock:
            self.n_llm_calls += 1
            self.prompt_tokens += call.get("prompt_tokens") or 0
            self.completion_tokens += call.get("completion_tokens") or 0
        self._rows.append((models.LLMCall, call))

    # -- state snapshots from the stream, for replaying Send tasks ----------------
    def observe(self, mode: str, chunk: Any) -> None:
        """Feed one ``stream(stream_mode=STREAM_MODES)`` event: remembers the state each task
        started from; ``from_stream``, also records the task as a node call."""
        if mode == "values":
            self._state = chunk
        elif mode == "tasks" and "input" in chunk:
            self._task_state[chunk["id"]] = self._state
            if self.from_stream:
                self._open_task(chunk)
        elif mode == "tasks" and self.from_stream:
            call = self._open.pop(chunk["id"], None)
            if call is not None:
                error = chunk.get("error")
                self._close(call, None if error else chunk.get("result"), remote_error(error) if error else None)
        elif mode == "llm":
            self._observe_llm(chunk)

    def _task_call_id(self, namespace: str) -> str | None:
        """The node call of the task that ``namespace`` ("node:task id|...") ends in, while it runs."""
        task = self._open.get(namespace.rpartition("|")[2].partition(":")[2]) if namespace else None
        return task["id"] if task is not None else None

    def _open_task(self, task: dict[str, Any]) -> None:
        node, step, push, namespace = task["name"], task["step"], task.get("triggers") == [PUSH], task["namespace"]
        if push and not namespace:
            self._sends.setdefault(step, []).append(serde.to_json(Send(node, task["input"])))
        knobs = self._all_knobs if self._node_knobs is None else (
            {} if namespace else self._node_knobs.get(node, {}))
        self._open[task["id"]] = {
            "id": str(uuid4()), "run_id": self.run_id, "parent_call_id": self._task_call_id(namespace),
            "kind": "node", "node": node, "namespace": namespace, "step": step, "task_id": task["id"],
            "inputs": serde.to_json(task["input"]), "reads": [], "output": None, "knobs": knobs,
            "started_at": utcnow(), "latency_s": None, "error": None,
            "_t0": time.perf_counter(), "_input": task["input"], "_push": push,
        }

    def _observe_llm(self, event: dict[str, Any]) -> None:
        """An LLM call's start or end streamed by the server (an ``astream_events`` event)."""
        data, metadata = event.get("data") or {}, event.get("metadata") or {}
        if event["event"] in ("on_chat_model_start", "on_llm_start"):
            owner = self._task_call_id(metadata.get("langgraph_checkpoint_ns", ""))
            messages = data["input"].get("messages", data["input"].get("prompts"))
            model = metadata.get("ls_model_name") or event.get("name") or ""
            self._open_llm(event["run_id"], owner, str(model), serde.to_json(messages), {})
            return
        call = self._open.pop(event["run_id"], None)
        if call is not None:
            output = data.get("output")
            usage = getattr(output, "usage_metadata", None) or {}
            self._llm_end(call, [output], (usage.get("input_tokens"), usage.get("output_tokens")))

    def _route_rows(self, rows: list[tuple[type, dict[str, Any]]]) -> list[dict[str, Any]]:
        """For a streamed run: one route row per step that emitted ``Send`` packets, under the
        step's first node call by name, holding the packets in the order their tasks ran."""
        out = []
        for step, sends in sorted(self._sends.items()):
            senders = sorted((r for t, r in rows if t is models.NodeCall and r["kind"] == "node"
                              and r["step"] == step - 1 and r["namespace"] == ""), key=lambda r: r["node"])
            if senders:
                first = senders[0]
                out.append({**first, "id": str(uuid4()), "parent_call_id": first["id"], "kind": "route",
                            "inputs": None, "reads": [], "output": {"router": None, "value": sends}, "knobs": {},
                            "latency_s": None, "error": None})
        return out

    def finish(self, **run: Any) -> None:
        """Write the ``Run`` row (``run`` are its fields besides ``id``), then every recorded row.

        A top-level step with a ``Send`` task or a node that got less than the whole state
        also gets a ``kind="state"`` row holding the state the step started from, which
        replay needs to continue the graph after such a task.
        """
        put = self.store.writer.put
        put(models.Run, {"id": self.run_id, **run})
        with self._lock:
            rows, self._rows = self._rows, []
        snapshots: dict[int, dict[str, Any]] = {}
        for table, row in rows:
            if table is models.NodeCall and row["kind"] == "node":
                push, keys = row.pop("_push"), row.pop("_input_keys")
                state = self._task_state.get(row["task_id"])
                if (row["namespace"] == "" and isinstance(state, dict) and row["step"] not in snapshots
                        and (push or set(keys) != set(state))):
                    snapshots[row["step"]] = {
                        **row, "id": str(uuid4()), "parent_call_id": None, "kind": "state", "node": STATE_NODE,
                        "task_id": "", "inputs": serde.to_json(state), "reads": [], "output": None, "knobs": {},
                        "latency_s": None, "error": None,  # same keys as every row: executemany takes the first row's
                    }
            put(table, row)
        for row in [*snapshots.values(), *self._route_rows(rows)]:
            put(models.NodeCall, row)


def record_stream(graph: Any, inputs: Any, config: dict[str, Any], context: Any, recorder: Recorder) -> Any:
    """Invoke ``graph`` with ``recorder`` attached; return the final output as ``invoke`` would."""
    config = {**config, "callbacks": [*config.get("callbacks", []), recorder]}
    output = None
    for mode, chunk in graph.stream(inputs, config, context=context, stream_mode=STREAM_MODES):
        recorder.observe(mode, chunk)
        if mode == "values":
            output = chunk
    return _as_invoked(graph, output)


async def arecord_stream(graph: Any, inputs: Any, config: dict[str, Any], context: Any, recorder: Recorder) -> Any:
    """The async form of ``record_stream`` (for graphs with async-only nodes)."""
    config = {**config, "callbacks": [*config.get("callbacks", []), recorder]}
    output = None
    stream: AsyncIterator[Any] = graph.astream(inputs, config, context=context, stream_mode=STREAM_MODES)
    async for mode, chunk in stream:
        recorder.observe(mode, chunk)
        if mode == "values":
            output = chunk
    return _as_invoked(graph, output)


def _as_invoked(graph: Any, state: Any) -> Any:
    """The final state as ``invoke`` returns it: a streamed ``values`` event holds every
    state channel (the recorder needs them to replay ``Send`` tasks), ``invoke`` only those
    of the graph's ``output_schema`` (and ``__interrupt__`` when the run paused)."""
    keys = getattr(graph, "output_channels", None)
    if not isinstance(keys, list) or not isinstance(state, dict):
        return state
    return {k: state[k] for k in [*keys, "__interrupt__"] if k in state}

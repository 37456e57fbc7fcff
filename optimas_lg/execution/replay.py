"""Replay: re-run one node on its recorded input, then continue the graph from there.

This is how Optimas scores a node's candidate output by its effect on the final result.
The continuation uses LangGraph's own checkpoint fork, so reducers, conditional edges
and joins behave as in a normal run: on a copy of the graph compiled with an in-memory
checkpointer and one extra, edgeless node (``__optimas_seed__``), a fresh thread gets

1. the state the node's step started from, written as the seed node (``Overwrite`` for
   reducer channels, so values are set, not merged; no edge fires);
2. one superstep holding the outputs of every task of that step in LangGraph's order
   (the other tasks' recorded outputs and the candidate output of node k), written
   ``as_node`` each task's node, which fires their edges, routers and join barriers;

then ``invoke(None)`` runs the rest of the graph. Only top-level node calls can be replayed.

With a ``Server``, the same two writes go to a new thread on the server (``ServerGraph``:
the state written as ``__start__`` with its triggers cleared stands in for the seed node,
which the served graph lacks), and the node or the continuation runs there.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import ParentCommand
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.managed.base import is_managed_value
from langgraph.types import Command, Overwrite, Send, StateUpdate

from optimas_lg.data import Example, Metric
from optimas_lg.errors import ReplayError
from optimas_lg.execution.runner import Invocation, arun_one, isolated, map_concurrent, run_coroutine, run_one
from optimas_lg.execution.server import OVERWRITE, Server, ServerGraph
from optimas_lg.graph import serde
from optimas_lg.graph.reads import ContextReads, state_values
from optimas_lg.graph.system import System, with_runtime
from optimas_lg.store import Store, models, queries

SEED_NODE = "__optimas_seed__"


@dataclass(frozen=True)
class Rollout:
    """One continuation of the graph after the replayed node."""

    final_output: Any
    score: float | None
    error: str | None
    run_id: str
    feedback: str | None = None


class _Fork:
    """The graph copy used for replays, with its checkpointer; its threads hold a recorded
    state and, optionally, the writes of the step that started from it."""

    def __init__(self, system: System) -> None:
        self.saver = InMemorySaver()
        self.run_store = system.run_store
        self.graph: CompiledStateGraph = system.compile(self.saver, builder=_replay_builder(system))
        self.is_async = system.is_async
        # A deferred node runs only once its run is about to end, which a thread holding one
        # recorded state never reaches: run alone, it is compiled without the deferral
        # (the same thread works for both: a seeded thread holds state keys only).
        deferred = [name for name, spec in system.builder.nodes.items() if spec.defer]
        self.alone = self.graph if not deferred else system.compile(self.saver, builder=_replay_builder(
            system, {name: dataclasses.replace(system.builder.nodes[name], defer=False) for name in deferred}))

    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        channels = self.graph.channels
        return {k: Overwrite(v) if isinstance(channels[k], BinaryOperatorAggregate) else v
                for k, v in _channel_values(state, channels)}

    @staticmethod
    def _thread() -> dict[str, Any]:
        return {"configurable": {"thread_id": f"optimas-replay-{uuid.uuid4()}"}}

    def _seeded(self, state: dict[str, Any]) -> list[list[StateUpdate]]:
        return [[StateUpdate(self.seed(state), SEED_NODE)]]

    def _step(self, config: dict[str, Any], step: Sequence[tuple[str, Any]], context: Any
              ) -> tuple[dict[str, Any], list[list[StateUpdate]]]:
        """The config and update that apply a step's writes. Applying them runs the routers
        after the step's nodes, and a router that takes a ``runtime`` argument finds it only
        in the config: ``update_state`` has no ``context`` parameter, and without it
        LangGraph raises "Missing required config key 'N/A' for 'route'"."""
        return with_runtime(config, context, self.run_store()), [[StateUpdate(out, name) for name, out in step]]

    def start(self, state: dict[str, Any], step: Sequence[tuple[str, Any]] = (), context: Any = None
              ) -> dict[str, Any]:
        config = self.graph.bulk_update_state(self._thread(), self._seeded(state))
        return self.graph.bulk_update_state(*self._step(config, step, context)) if step else config

    async def astart(self, state: dict[str, Any], step: Sequence[tuple[str, Any]] = (), context: Any = None
                     ) -> dict[str, Any]:
        config = await self.graph.abulk_update_state(self._thread(), self._seeded(state))
        return await self.graph.abulk_update_state(*self._step(config, step, context)) if step else config

    def end(self, config: dict[str, Any]) -> None:
        self.saver.delete_thread(config["configurable"]["thread_id"])

    def run_alone(self, node: str, goto: Any, config: dict[str, Any], context: Any) -> Any:
        """Run ``goto`` on ``config``'s thread, stopping after ``node``; the node's raw output."""
        capture = _Capture(node)
        config = with_runtime({**config, "callbacks": [capture, *config.get("callbacks", [])]},
                              store=self.run_store())
        if self.is_async:
            run_coroutine(lambda: self.alone.ainvoke(Command(goto=goto), config, context=context,
                                                     interrupt_after=[node]))
        else:
            self.alone.invoke(Command(goto=goto), config, context=context, interrupt_after=[node])
        return capture.output


class _ServerFork:
    """The same threads on a LangGraph Server (the served graph itself, no seed node; never
    async here, so without ``astart``)."""

    def __init__(self, system: System, server: Server) -> None:
        compiled = system.compile()
        self.channels = compiled.channels
        self.graph = ServerGraph(server, compiled.output_channels)
        self.is_async = False  # the server runs it; here the SDK client is synchronous

    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        """Reducer channels overwritten, except messages: the server rebuilds messages from its
        JSON only in ``add_messages``, which keeps them as they are on a new thread's empty channel."""
        return {k: {OVERWRITE: v} if _overwrites(self.channels[k]) else v
                for k, v in _channel_values(state, self.channels)}

    def start(self, state: dict[str, Any], step: Sequence[tuple[str, Any]] = (), context: Any = None
              ) -> dict[str, Any]:
        return self.graph.thread(self.seed(state), step)  # the server applies the writes with its own context

    def end(self, config: dict[str, Any]) -> None:
        self.graph.delete(config)

    def run_alone(self, node: str, goto: Any, config: dict[str, Any], context: Any) -> Any:
        return self.graph.run_alone(node, goto, config, context)


def _channel_values(state: dict[str, Any], channels: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The recorded state's entries a replay writes back: those of the graph's channels, not
    of its managed values (``remaining_steps`` is LangGraph's to compute, not a channel)."""
    return [(k, v) for k, v in state.items() if k in channels and not is_managed_value(channels[k])]


def _overwrites(channel: Any) -> bool:
    return isinstance(channel, BinaryOperatorAggregate) and channel.operator is not add_messages


def _replay_builder(system: System, replaced: dict[str, Any] | None = None) -> Any:
    """A copy of the system's builder with the seed node added (and ``replaced`` node specs)."""
    builder = copy.copy(system.builder)
    builder.nodes = {**system.builder.nodes, **(replaced or {})}
    builder.compiled = False
    builder.add_node(SEED_NODE, _seed)
    return builder


def _seed(state: Any) -> dict[str, Any]:
    """Never runs: replays write the recorded state as this node, which has no edges."""
    return {}


_forks: "weakref.WeakKeyDictionary[System, dict[Server | None, _Fork | _ServerFork]]" = weakref.WeakKeyDictionary()
_forks_lock = threading.Lock()


def _fork(system: System, server: Server | None = None) -> _Fork | _ServerFork:
    with _forks_lock:
        forks = _forks.setdefault(system, {})
        if server not in forks:
            forks[server] = _Fork(system) if server is None else _ServerFork(system, server)
        return forks[server]


class _Capture(BaseCallbackHandler):
    """Keeps the raw return value (update dict or ``Command``) of one top-level node."""

    run_inline = True

    def __init__(self, node: str) -> None:
        self.node = node
        self.runs: set[Any] = set()
        self.output: Any = None

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, metadata: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
        md = metadata or {}
        if (kwargs.get("name") == self.node == md.get("langgraph_node")
                and "|" not in md.get("langgraph_checkpoint_ns", "|")):
            self.runs.add(run_id)

    def on_chain_end(self, outputs: Any, *, run_id: Any, **kwargs: Any) -> None:
        if run_id in self.runs:
            self.output = outputs

    def on_chain_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        # a subgraph node that leaves with Command(graph=PARENT) routes by raising it
        if run_id in self.runs and isinstance(error, ParentCommand):
            self.output = dataclasses.replace(error.args[0], graph=None)  # the node's own Command, at its level


@isolated
def run_node(system: System, node: str, state: Any, knobs: dict[str, Any] | None = None, *,
             as_send: bool = False, graph_state: Any = None, context: Any = None,
             callbacks: Sequence[BaseCallbackHandler] = (), server: Server | None = None) -> dict[str, Any] | Command:
    """Execute ``node`` alone on its recorded input with ``knobs``; return its output update.

    ``state`` is the node's input (``NodeCall.inputs`` after ``serde.from_json``). A node
    that ran as a ``Send`` task gets it as the ``Send`` argument (``as_send=True``), with
    ``graph_state`` as the rest of the state. A node returning ``Command`` gives the Command.
    ``callbacks`` see the run too (a ``TokenMeter`` handler counts its LLM tokens).
    ``context`` replaces the run context built from ``knobs`` (``knobs_read`` passes a probe).
    With a ``server`` the node runs there (``callbacks`` and a probe see nothing of it).
    """
    if node not in system.graph.nodes:
        raise ReplayError(f"node {node!r} is not in the graph (nodes: {sorted(system.graph.nodes)})")
    fork = _fork(system, server)
    seed = graph_state if as_send else state
    cfg = fork.start(state_values(seed or {}))
    config = system.config(knobs, callbacks=list(callbacks), configurable=dict(cfg["configurable"]))
    goto = Send(node, state) if as_send else node
    context = system.context(knobs) if context is None else context
    try:
        return fork.run_alone(node, goto, config, context)
    finally:
        fork.end(cfg)


def knobs_read(system: System, node: str, states: Sequence[Any], knobs: dict[str, Any] | None = None,
               graph_states: Sequence[Any] | None = None) -> set[str] | None:
    """The context-schema knobs ``node`` reads when run alone on ``states`` (``Send``
    arguments sent from ``graph_states``, when given) under ``knobs``
    (a knob it never reads there is dead under these values). ``None`` when that cannot be
    told: the graph has no context schema, the node takes LangGraph's ``config`` (it may
    read knobs from ``config["configurable"]``, which the probe cannot see), or every run
    failed. A node that reads the context as a whole reads every knob."""
    if system.context_schema is None or "config" in getattr(system.builder.nodes[node].runnable, "func_accepts", {}):
        return None
    read: set[str] = set()
    ran = False
    for i, state in enumerate(states):
        probe = ContextReads(system.context(knobs))
        try:
            run_node(system, node, state, knobs, as_send=graph_states is not None,
                     graph_state=None if graph_states is None else graph_states[i], context=probe)
        except Exception:  # a failing input tells nothing about reads; others may
            continue
        ran = True
        read |= set(system.knobs) if probe.whole else probe.reads
    return read & set(system.knobs) if ran else None


@isolated
def rollout_from(system: System, node: str, state: Any, node_output: Any, example: Example, metric: Metric,
                 knobs: dict[str, Any] | None, rollouts: int, store: Store | None = None, job_id: int | None = None,
                 *, siblings: Sequence[tuple[str, Any]] = (), position: int | None = None, concurrency: int = 4,
                 replay_of: str | None = None, config_id: int | None = None,
                 server: Server | None = None) -> list[Rollout]:
    """Continue the graph ``rollouts`` times after ``node`` produced ``node_output`` from ``state``.

    ``state`` is the graph state the node's step started from. ``siblings`` are the
    ``(node, output)`` of the other tasks of that step in LangGraph's order, and
    ``position`` is where this node's task stood among them (default: last). With a
    ``store``, each continuation is recorded as a run with ``purpose="rollout"``. With a
    ``server``, each continuation runs there, on a thread of its own.
    """
    if node not in system.graph.nodes:
        raise ReplayError(f"node {node!r} is not in the graph (nodes: {sorted(system.graph.nodes)})")
    fork = _fork(system, server)
    recorded = state_values(state)
    step = list(siblings)
    step.insert(len(step) if position is None else position, (node, node_output))
    run = {"job_id": job_id, "config_id": config_id, "purpose": "rollout", "replay_of": replay_of}
    context = system.context(knobs)  # for the routers after the step's writes (``_Fork._thread``)
    writer = store.writer if store is not None else None  # started here, not lazily from rollout threads

    def invocation() -> Invocation:
        return Invocation(example, dict(knobs or {}), None, run=run)

    def sync_fn(inv: Invocation) -> Rollout:
        inv.config = fork.start(recorded, step, context)
        try:
            return _rollout(run_one(system, fork.graph, inv, metric, store))
        finally:
            fork.end(inv.config)

    async def async_fn(inv: Invocation) -> Rollout:  # never on a server (``fork.is_async`` is False there)
        assert isinstance(fork, _Fork)
        inv.config = await fork.astart(recorded, step, context)
        try:
            return _rollout(await arun_one(system, fork.graph, inv, metric, store))
        finally:
            fork.end(inv.config)

    try:
        return map_concurrent([invocation() for _ in range(rollouts)], sync_fn, async_fn, fork.is_async,
                              concurrency)
    finally:
        if writer is not None:
            writer.flush()


def _rollout(result: Any) -> Rollout:
    return Rollout(result.output, result.score, result.error, result.run_id, result.feedback)


def _sends(calls: Sequence[models.NodeCall]) -> list[Any]:
    """The ``Send`` packets a step emitted, in LangGraph's order (by task, Command gotos before routers)."""
    out: list[Any] = []
    ordered = sorted((c for c in calls if c.kind == "node"), key=lambda c: c.node)
    for call in ordered:
        is_command = isinstance(call.output, dict) and call.output.get(serde.TAG) == "command"
        values = [call.output["goto"]] if is_command else []
        values += [r.output["value"] for r in calls if r.kind == "route" and r.parent_call_id == call.id]
        for value in values:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and item.get(serde.TAG) == "send":
                    out.append(item)
    return out


def _step_layout(store: Store, call: models.NodeCall) -> tuple[list[models.NodeCall], dict[str, int]]:
    """The top-level node calls of ``call``'s step in LangGraph's write order, and the Send index of push tasks."""
    same = queries.step_calls(store, call.run_id, call.step, kind="node")
    prev = queries.step_calls(store, call.run_id, call.step - 1)
    sends = _sends(prev)
    used: set[int] = set()
    push_index: dict[str, int] = {}
    for c in sorted(same, key=lambda c: c.started_at):
        for i, send in enumerate(sends):
            if i not in used and send["node"] == c.node and send["arg"] == c.inputs:
                used.add(i)
                push_index[c.id] = i
                break
    ordered = sorted(same, key=lambda c: (c.id in push_index, push_index.get(c.id, 0), c.node))
    return ordered, push_index


@dataclass(frozen=True)
class RecordedStep:
    """A recorded node call within its step, as a replay needs it: ``state`` is the graph
    state the step started from, ``node_input`` what the node itself read (its ``Send``
    argument when ``as_send``, else that state), and ``siblings`` the ``(node, output)`` of
    the step's other tasks in LangGraph's write order, this call standing at ``position``.
    Without its siblings a continuation of a fan-out node never passes the join after it."""

    state: Any
    node_input: Any
    as_send: bool
    siblings: list[tuple[str, Any]]
    position: int


def recorded_step(store: Store, node_call: models.NodeCall, types: Any = None) -> RecordedStep:
    """Where ``node_call`` stood in its run (values decoded with the graph's ``types``)."""
    if node_call.kind != "node":
        raise ReplayError(f"node call {node_call.id} is a {node_call.kind!r} record; only node calls replay")
    if node_call.namespace:
        top = node_call.namespace.split("|")[0].partition(":")[0]
        raise ReplayError(f"node call {node_call.id} ({node_call.node!r}) ran inside subgraph node {top!r}; "
                          f"replay the enclosing node {top!r} instead")
    ordered, push_index = _step_layout(store, node_call)
    snapshot = queries.state_snapshot(store, node_call.run_id, node_call.step)
    as_send = node_call.id in push_index
    node_input = serde.from_json(node_call.inputs, types)
    if snapshot is not None:
        state = serde.from_json(snapshot.inputs, types)
    elif as_send:
        raise ReplayError(f"node call {node_call.id} ({node_call.node!r}) was a Send task but run "
                          f"{node_call.run_id} has no state snapshot for step {node_call.step}; record it again "
                          "with optimas_lg.execution.runner (which streams the state)")
    else:
        state = node_input
    others = [c for c in ordered if c.id != node_call.id]
    if any(c.error for c in others):
        raise ReplayError(f"another task of step {node_call.step} in run {node_call.run_id} failed; "
                          "that step cannot be continued")
    return RecordedStep(state, node_input, as_send, [(c.node, serde.from_json(c.output, types)) for c in others],
                        [c.id for c in ordered].index(node_call.id))


def replay(system: System, node_call: models.NodeCall, example: Example, metric: Metric,
           knobs: dict[str, Any] | None = None, output: Any = None, rollouts: int = 1, *, store: Store,
           job_id: int | None = None, concurrency: int = 4, server: Server | None = None) -> list[Rollout]:
    """Replay a recorded node call: re-run it with ``knobs`` (or take ``output`` as given, or
    its recorded output when neither is given), then continue the graph ``rollouts`` times.

    The rest of the graph runs with the original run's knob values, ``knobs`` overriding them.
    """
    step = recorded_step(store, node_call, system.types)
    run_knobs = _run_knobs(store, node_call.run_id)
    if knobs:
        run_knobs.update(knobs)
    if output is None and knobs is None:
        if node_call.error:
            raise ReplayError(f"node call {node_call.id} ({node_call.node!r}) failed, so it has no output to "
                              "replay; pass knobs to re-run it or an output to use")
        output = serde.from_json(node_call.output, system.types)
    elif output is None:
        output = run_node(system, node_call.node, step.node_input, run_knobs, as_send=step.as_send,
                          graph_state=step.state, server=server)
    return rollout_from(system, node_call.node, step.state, output, example, metric, run_knobs, rollouts, store,
                        job_id, siblings=step.siblings, position=step.position, concurrency=concurrency,
                        replay_of=node_call.run_id, server=server)


def _run_knobs(store: Store, run_id: str) -> dict[str, Any]:
    """The knob values a recorded run used: its config version, else what its node calls saw."""
    run = store.get(models.Run, run_id)
    if run is None:
        raise ReplayError(f"run {run_id} is not in store {store.display_url}")
    if run.config_id is not None:
        return dict(store.get(models.ConfigVersion, run.config_id).values)
    values: dict[str, Any] = {}
    for call in queries.top_level_calls(store, run_id):
        values.update(call.knobs or {})
    return values


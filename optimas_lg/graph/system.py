"""The system: a user's LangGraph ``StateGraph`` seen as the DAG of components Optimas optimizes.

``System.load`` accepts a builder, a compiled graph, a zero-argument factory returning
either, or a ``"file.py:attr"`` / ``"pkg.mod:attr"`` target naming one of those. The
graph structure comes from the builder (``edges``, ``waiting_edges``, ``branches``,
node ``ends``), never from ``compiled.get_graph()``, which draws an untyped routing
function as an edge to END. What cannot be known before running (a router without a
``Literal`` hint or path map, ``Command(goto=...)`` without declared destinations,
``Send`` fan-outs) is marked *dynamic* instead of guessed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect as pyinspect
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import Runnable
from langgraph._internal._constants import CONFIG_KEY_RUNTIME
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel
from langgraph.pregel._utils import find_subgraph_pregel
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import Checkpointer
from typing_extensions import is_typeddict

from optimas_lg.data import Example
from optimas_lg.errors import DataError, KnobError, TargetError
from optimas_lg.graph import serde
from optimas_lg.graph.knobs import KnobSpec, defaults, knob_specs, validate_assignment
from optimas_lg.graph.reads import ReadTracker
from optimas_lg.graph.target import load_target

FORMAT = "optimas-lg/system-graph"
FORMAT_VERSION = 1
EdgeKind = Literal["static", "join", "branch", "command"]


@dataclass(frozen=True)
class NodeInfo:
    """One node: its docstring, knobs, the state keys its input schema declares, and what it may route to."""

    name: str
    doc: str | None
    knobs: tuple[str, ...]
    reads: tuple[str, ...]
    is_async: bool
    command_targets: tuple[str, ...] | None
    dynamic: bool
    subgraph: SystemGraph | None = None
    retry: bool = False
    defer: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "doc": self.doc, "knobs": list(self.knobs), "reads": list(self.reads), "is_async": self.is_async,
            "command_targets": None if self.command_targets is None else list(self.command_targets),
            "dynamic": self.dynamic, "retry": self.retry, "defer": self.defer,
            "subgraph": self.subgraph.to_json() if self.subgraph else None,
        }


@dataclass(frozen=True)
class Edge:
    """A possible transition. ``join`` edges fire only when all ``Join.sources`` have run."""

    source: str
    target: str
    kind: EdgeKind
    branch: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "kind": self.kind, "branch": self.branch}


@dataclass(frozen=True)
class Join:
    sources: tuple[str, ...]
    target: str

    def to_json(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "target": self.target}


@dataclass(frozen=True)
class Branch:
    """A conditional edge; ``targets is None`` (dynamic) when the router's return values are unknown."""

    source: str
    name: str
    targets: tuple[str, ...] | None
    path_map: dict[str, str] | None
    doc: str | None

    @property
    def dynamic(self) -> bool:
        return self.targets is None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "dynamic": self.dynamic, "doc": self.doc,
                "targets": None if self.targets is None else list(self.targets), "path_map": self.path_map}


@dataclass
class SystemGraph:
    """The introspected graph. ``to_json()`` is the stable format documented in docs/concepts.md."""

    name: str
    state_keys: list[str]
    input_keys: list[str]
    output_keys: list[str]
    context_schema: str | None
    knobs: dict[str, KnobSpec]
    nodes: dict[str, NodeInfo]
    edges: list[Edge]
    joins: list[Join]
    branches: list[Branch]
    cycles: list[list[str]] = field(default_factory=list)

    @property
    def dynamic(self) -> list[str]:
        """Human-readable reasons why parts of the graph are only known at run time."""
        out = [f"branch {b.name!r} from {b.source!r}: router has no Literal return hint or path_map"
               for b in self.branches if b.dynamic]
        out += [f"node {n.name!r}: may route with Command(goto=...) to undeclared destinations"
                for n in self.nodes.values() if n.dynamic]
        return out

    def successors(self, node: str) -> set[str]:
        return {e.target for e in self.edges if e.source == node}

    def ends_run(self, node: str) -> bool:
        """Whether the run is over once ``node`` has written (when no other task shares its
        step): every way out of it goes to END, with no router or ``Command`` whose
        targets are unknown."""
        dynamic = self.nodes[node].dynamic or any(b.source == node and b.dynamic for b in self.branches)
        return not dynamic and self.successors(node) == {END}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "name": self.name,
            "state_keys": self.state_keys, "input_keys": self.input_keys, "output_keys": self.output_keys,
            "context_schema": self.context_schema,
            "knobs": {name: _knob_json(spec) for name, spec in self.knobs.items()},
            "nodes": {name: info.to_json() for name, info in self.nodes.items()},
            "edges": [e.to_json() for e in self.edges],
            "joins": [j.to_json() for j in self.joins],
            "branches": [b.to_json() for b in self.branches],
            "cycles": self.cycles,
            "dynamic": self.dynamic,
        }

    def to_mermaid(self) -> str:
        """A Mermaid flowchart; node labels list their knobs, dynamic routes point at a '?' node."""
        lines = ["flowchart TD"]
        _mermaid_body(self, "", lines, "  ")
        return "\n".join(lines)


def _knob_json(spec: KnobSpec) -> dict[str, Any]:
    space = {f.name: getattr(spec.knob, f.name) for f in dataclasses.fields(spec.knob)
             if f.name not in ("node", "default")}
    space = {k: serde.to_json(list(v) if isinstance(v, tuple) else v) for k, v in space.items()}
    return {"node": spec.node, "kind": spec.kind, "default": serde.to_json(spec.default), **space}


def _mid(prefix: str, name: str) -> str:
    # a prefix keeps Mermaid keywords such as "end" from being read as ids
    return "n_" + "".join(c if c.isalnum() else "_" for c in f"{prefix}{name}")


def _mermaid_body(g: SystemGraph, prefix: str, lines: list[str], ind: str) -> None:
    ids = {START: _mid(prefix, "start"), END: _mid(prefix, "end")}
    lines.append(f'{ind}{ids[START]}(["start"])')
    lines.append(f'{ind}{ids[END]}(["end"])')
    for name, info in g.nodes.items():
        ids[name] = _mid(prefix, name)
        knobs = "".join(f"<br/><i>{k}: {g.knobs[k].kind}</i>" for k in info.knobs)
        if info.subgraph is not None:
            lines.append(f'{ind}subgraph {ids[name]} ["{name} (subgraph){knobs}"]')
            _mermaid_body(info.subgraph, f"{ids[name]}__", lines, ind + "  ")
            lines.append(f"{ind}end")
            continue
        lines.append(f'{ind}{ids[name]}["{name}{knobs}"]')
    for e in g.edges:
        src, dst = ids[e.source], ids[e.target]
        if e.kind == "static":
            lines.append(f"{ind}{src} --> {dst}")
        elif e.kind == "join":
            lines.append(f"{ind}{src} ==> {dst}")
        else:
            lines.append(f"{ind}{src} -.->|{e.branch or 'Command'}| {dst}")
    dynamic_sources = [(b.source, b.name) for b in g.branches if b.dynamic]
    dynamic_sources += [(n.name, "Command") for n in g.nodes.values() if n.dynamic]
    for i, (source, label) in enumerate(dynamic_sources):
        qid = _mid(prefix, f"dynamic{i}")
        lines.append(f'{ind}{qid}{{{{"?"}}}}')
        lines.append(f"{ind}{ids[source]} -.->|{label}| {qid}")


def _user_function(runnable: Any) -> Any:
    """The user's own function (or callable) behind a node or router: unwrapped from
    LangGraph's ``RunnableCallable`` and from ``functools.partial`` (a node with its LLM bound
    in, as LangGraph's multi-agent tutorials write them)."""
    func = (runnable.func or runnable.afunc) if isinstance(runnable, RunnableCallable) else runnable
    while isinstance(func, functools.partial):
        func = func.func
    return func


def _node_doc(runnable: Any) -> str | None:
    """The docstring of the user's function or callable class (not of a LangGraph/LangChain
    wrapper such as ToolNode or a compiled subgraph, whose class docstring says nothing about
    this node)."""
    func = _user_function(runnable)
    if func is None or isinstance(func, Runnable):
        return None
    doc = func.__doc__ if pyinspect.isroutine(func) else type(func).__doc__ or type(func).__call__.__doc__
    return pyinspect.cleandoc(doc) if doc else None


def _router_doc(path: Any) -> tuple[str, str | None]:
    func = _user_function(path if isinstance(path, RunnableCallable) else getattr(path, "func", None) or path)
    name = getattr(func, "__name__", None) or getattr(path, "name", None) or type(path).__name__
    doc = func.__doc__ if pyinspect.isroutine(func) else None
    return name, pyinspect.cleandoc(doc) if doc else None


def _is_async(runnable: Any) -> bool:
    return isinstance(runnable, RunnableCallable) and runnable.func is None and runnable.afunc is not None


def _returns_command(runnable: Any, has_exit: bool) -> bool:
    """Whether the node may route by returning ``Command``: its return annotation mentions
    ``Command``, or it has none and no edge leaves it (most users do not annotate
    ``Command[Literal[...]]``; a node with no way out and no annotation is read as routing
    itself rather than as a dead end). A subgraph node with no way out is read the same way:
    its nodes route the parent with ``Command(graph=Command.PARENT)``."""
    func = _user_function(runnable) if isinstance(runnable, RunnableCallable) else None
    if func is None:
        return not has_exit and find_subgraph_pregel(runnable) is not None
    try:
        ret = typing.get_type_hints(func).get("return")
    except Exception:  # unresolvable forward references: the annotation tells us nothing
        ret = getattr(func, "__annotations__", {}).get("return")
    if ret is None:
        return not has_exit
    return "Command" in (ret if isinstance(ret, str) else repr(ret) + str(typing.get_origin(ret)))


def _schema_keys(builder: StateGraph, schema: Any) -> list[str]:
    return [k for k in builder.schemas.get(schema, {}) if k != "__root__"]


def _schemas(builder: StateGraph) -> list[Any]:
    """Every schema of ``builder`` and of its subgraphs: what their recorded values are built from."""
    out = [*builder.schemas, builder.context_schema]
    for spec in builder.nodes.values():
        sub = find_subgraph_pregel(spec.runnable)
        if isinstance(sub, CompiledStateGraph):
            out += _schemas(sub.builder)
    return [s for s in out if s is not None]


def _subgraph_nodes(builder: StateGraph) -> dict[str, str]:
    """Each node inside a subgraph, at any depth, -> the node of ``builder`` that runs it."""
    out: dict[str, str] = {}
    for name, spec in builder.nodes.items():
        sub = find_subgraph_pregel(spec.runnable)
        if isinstance(sub, CompiledStateGraph):
            for inner in [*sub.builder.nodes, *_subgraph_nodes(sub.builder)]:
                out.setdefault(inner, name)
    return out


def _cycles(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan), each sorted, in node order."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        if e.source in succ and e.target in succ:
            succ[e.source].append(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in succ[v]:
                out.append(sorted(comp, key=nodes.index))

    for n in nodes:
        if n not in index:
            visit(n)
    return sorted(out, key=lambda c: nodes.index(c[0]))


def _refuse_subgraph_knobs(graph: SystemGraph, knob_schema: type | None, path: str = "") -> None:
    """Knobs declared on a subgraph's own context schema would never be optimized: only the
    top-level schema's knobs are (a subgraph node is one node of the graph), so say where
    they belong instead of ignoring them."""
    for name, info in graph.nodes.items():
        if info.subgraph is None:
            continue
        if info.subgraph.knobs:
            top = path.split("/")[0] if path else name
            schema = knob_schema.__name__ if knob_schema else "a context schema of the graph's own"
            raise KnobError(f"subgraph node {path + name!r} declares knobs {sorted(info.subgraph.knobs)} on its own "
                            f"context schema, which optimas-lg does not optimize: declare them on {schema} with "
                            f"node={top!r} (LangGraph hands the parent's context to its subgraphs)")
        _refuse_subgraph_knobs(info.subgraph, knob_schema, f"{path}{name}/")


def introspect(builder: StateGraph, knobs: dict[str, KnobSpec] | None = None, name: str = "LangGraph", *,
               outer_schemas: tuple[type, ...] = ()) -> SystemGraph:
    """Build the ``SystemGraph`` of a ``StateGraph`` builder (subgraphs included, recursively).

    A knob belongs to the graph whose schema declares it: a subgraph whose context schema
    is one of ``outer_schemas`` (typically the parent's, shared to type its ``Runtime``)
    declares no knobs of its own, so the parent's knobs are not checked against its nodes.
    """
    if knobs is None:
        shared = builder.context_schema in outer_schemas
        knobs = {} if shared else knob_specs(builder.context_schema, builder.nodes)
    inner_schemas = (*outer_schemas, builder.context_schema)
    nodes: dict[str, NodeInfo] = {}
    edges: list[Edge] = [Edge(s, t, "static") for s, t in sorted(builder.edges)]
    joins = [Join(tuple(starts), end) for starts, end in sorted(builder.waiting_edges)]
    edges += [Edge(s, j.target, "join") for j in joins for s in j.sources]
    exits = {e.source for e in edges} | set(builder.branches)
    for node_name, spec in builder.nodes.items():
        if spec.is_error_handler:
            continue
        sub = find_subgraph_pregel(spec.runnable)
        sub_graph = None
        if isinstance(sub, CompiledStateGraph):
            sub_graph = introspect(sub.builder, name=node_name, outer_schemas=inner_schemas)
        if spec.ends:
            targets: tuple[str, ...] | None = tuple(spec.ends.values() if isinstance(spec.ends, dict) else spec.ends)
            edges += [Edge(node_name, t, "command") for t in targets]
        else:
            targets = None if _returns_command(spec.runnable, node_name in exits) else ()
        nodes[node_name] = NodeInfo(
            name=node_name,
            doc=_node_doc(spec.runnable),
            knobs=tuple(k for k, s in knobs.items() if s.node == node_name),
            reads=tuple(_schema_keys(builder, spec.input_schema)),
            is_async=_is_async(spec.runnable) or bool(sub_graph and any(n.is_async for n in sub_graph.nodes.values())),
            command_targets=targets,
            dynamic=targets is None,
            subgraph=sub_graph,
            retry=spec.retry_policy is not None,
            defer=spec.defer,
        )
    branches: list[Branch] = []
    for source, by_name in builder.branches.items():
        for branch_name, bspec in by_name.items():
            _, doc = _router_doc(bspec.path)
            path_map = {str(k): v for k, v in bspec.ends.items()} if bspec.ends is not None else None
            targets = tuple(dict.fromkeys(bspec.ends.values())) if bspec.ends is not None else None
            branches.append(Branch(source, branch_name, targets, path_map, doc))
            edges += [Edge(source, t, "branch", branch_name) for t in targets or ()]
    order = list(nodes)
    return SystemGraph(
        name=name,
        state_keys=_schema_keys(builder, builder.state_schema),
        input_keys=_schema_keys(builder, builder.input_schema),
        output_keys=_schema_keys(builder, builder.output_schema),
        context_schema=builder.context_schema.__name__ if builder.context_schema else None,
        knobs={k: s for k, s in knobs.items()},
        nodes=nodes,
        edges=edges,
        joins=joins,
        branches=branches,
        cycles=_cycles(order, edges),
    )


class System:
    """A user's graph plus its knobs: what optimizers change, run and replay.

    Knob values reach nodes two ways: as fields of the graph's ``context_schema``
    (``runtime.context``, the primary path) and as ``config["configurable"][name]``
    for older agents that read knobs from the config. ``knob_schema`` declares knobs for
    a graph whose context schema is not where they live.

    ``types`` are what replay may rebuild from the store (``serde.from_json``): the types
    reachable from the state, input, output and context schemas (subgraphs included) and
    the ``types`` given, for values a node stores under an ``Any`` field.

    ``run_config`` is the config every run starts from: a compiled graph's own (set with
    ``graph.with_config(recursion_limit=8)``, say), so a run here stops where the user's would.
    ``context_values`` are the context schema's other fields, fixed for every run (a
    required ``user_id``, say): knobs are what optimization changes, these never change.
    ``step_timeout`` is LangGraph's limit in seconds on one step of a run (a compiled
    graph's ``graph.step_timeout``), kept on every graph compiled here, replays included.
    """

    def __init__(self, builder: StateGraph, *, name: str = "LangGraph", knob_schema: type | None = None,
                 compile_kwargs: dict[str, Any] | None = None, types: Sequence[type] = (),
                 run_config: dict[str, Any] | None = None, context_values: dict[str, Any] | None = None,
                 step_timeout: float | None = None) -> None:
        self.builder = builder
        self.name = name
        self.step_timeout = step_timeout
        self.context_schema: type | None = builder.context_schema
        self.knob_schema = knob_schema or builder.context_schema
        node_names = [n for n, spec in builder.nodes.items() if not spec.is_error_handler]
        self.knobs: dict[str, KnobSpec] = knob_specs(self.knob_schema, node_names, _subgraph_nodes(builder))
        self.graph = introspect(builder, self.knobs, name, outer_schemas=(self.knob_schema,))
        _refuse_subgraph_knobs(self.graph, self.knob_schema)
        self.types = serde.Types.reachable(*_schemas(builder), *types)
        self._compile_kwargs = compile_kwargs or {}
        self.run_config: dict[str, Any] = dict(run_config or {})
        self.context_values: dict[str, Any] = {}
        self.fix_context(context_values or {})

    def fix_context(self, values: dict[str, Any]) -> None:
        """Fix context fields that are not knobs to ``values`` for every run (added to those fixed before)."""
        knobs_among = sorted(set(values) & set(self.knobs))
        if knobs_among:
            raise KnobError(f"{knobs_among} are knobs: give their values as a config, not as fixed context values")
        fields = set(typing.get_type_hints(self.context_schema)) if self.context_schema else set()
        if set(values) - fields:
            raise KnobError(f"context values {sorted(set(values) - fields)} are not fields of the context schema "
                            f"({self.context_schema.__name__ if self.context_schema else 'none'}: {sorted(fields)})")
        self.context_values = {**self.context_values, **values}

    def check_inputs(self, examples: Sequence[Example], named: Sequence[str] | None = None) -> None:
        """Refuse data whose inputs the graph would never see: LangGraph drops a field its input
        schema lacks without a word, so a misspelt key (``usr`` for ``user``) ran every example
        from an empty state. ``named`` fields (``--inputs``) must all be input keys; any
        example must give at least one. Other extra fields are dropped, as LangGraph does."""
        known = set(self.graph.input_keys)
        if not known:
            return
        unknown = sorted(set(named or ()) - known)
        if unknown:
            raise DataError(f"input fields {unknown} are not keys of the graph's input schema {sorted(known)}; "
                            "LangGraph would drop them")
        for example in examples:
            if example.inputs and not set(example.inputs) & known:
                raise DataError(f"example {example.key!r} gives none of the graph's input keys {sorted(known)} "
                                f"(it gives {sorted(example.inputs)}); LangGraph would drop them and start from an "
                                "empty state")

    @classmethod
    def load(cls, target: Any, *, knob_schema: type | None = None, types: Sequence[type] = (),
             context: dict[str, Any] | None = None) -> "System":
        """Wrap a builder, compiled graph, zero-argument factory (of either, or of a ``System``),
        or a target string naming one; ``context`` fixes the context schema's non-knob fields."""
        if isinstance(target, System):
            target.fix_context(context or {})
            return target
        label = target if isinstance(target, str) else repr(target)
        obj = load_target(target) if isinstance(target, str) else target
        if callable(obj) and not isinstance(obj, (StateGraph, CompiledStateGraph)):
            required = [p.name for p in pyinspect.signature(obj).parameters.values()
                        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if required:
                raise TargetError(f"{label}: a factory must take no arguments, this one needs {required}")
            obj = obj()
        if isinstance(obj, System):
            return cls.load(obj, context=context)
        if isinstance(obj, CompiledStateGraph):
            if obj.interrupt_before_nodes or obj.interrupt_after_nodes:
                raise TargetError(
                    f"{label} is compiled with breakpoints (interrupt_before={obj.interrupt_before_nodes}, "
                    f"interrupt_after={obj.interrupt_after_nodes}): optimas-lg runs each example start to end with "
                    "no one to resume it; compile it without them to optimize it (or pass the builder)")
            kwargs = {"name": obj.name, "store": obj.store}
            return cls(obj.builder, name=obj.name, knob_schema=knob_schema, compile_kwargs=kwargs, types=types,
                       run_config=obj.config, context_values=context, step_timeout=obj.step_timeout)
        if isinstance(obj, StateGraph):
            return cls(obj, knob_schema=knob_schema, types=types, context_values=context)
        if isinstance(obj, Pregel):
            raise TargetError(f"{label} is a {type(obj).__name__} without a StateGraph (a functional-API @entrypoint "
                              "is one): optimas-lg reads the nodes, edges and context schema of a StateGraph; build "
                              "the workflow as a StateGraph (each @task a node) to optimize it")
        raise TargetError(
            f"{label}: expected a langgraph StateGraph builder, a compiled StateGraph or a zero-argument "
            f"factory returning one, got {type(obj).__name__}"
        )

    @property
    def is_async(self) -> bool:
        """True when some node only has an async implementation (run it with the async API)."""
        return any(n.is_async for n in self.graph.nodes.values())

    def optimizable_nodes(self) -> list[str]:
        """Nodes with at least one knob, in graph order."""
        return [name for name, info in self.graph.nodes.items() if info.knobs]

    def knob_values(self, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """The full assignment: defaults overridden by ``values`` (validated)."""
        values = values or {}
        validate_assignment(self.knobs, values)
        return {**defaults(self.knobs), **values}

    def knob_values_of(self, config: Any) -> dict[str, Any]:
        """The knob values given as a mapping or as an instance of the context schema
        (only its knob fields), validated; ``None`` gives none."""
        if config is None:
            return {}
        values = dict(config) if isinstance(config, Mapping) else {
            k: getattr(config, k) for k in self.knobs if hasattr(config, k)}
        validate_assignment(self.knobs, values)
        return values

    def knobs_by_node(self, values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        full = self.knob_values(values)
        out: dict[str, dict[str, Any]] = {}
        for name, spec in self.knobs.items():
            out.setdefault(spec.node, {})[name] = full[name]
        return out

    def context(self, values: dict[str, Any] | None = None) -> Any:
        """An instance of the context schema: knob defaults and ``context_values``, overridden by ``values``.

        Always pass one: LangGraph hands nodes ``runtime.context = None`` otherwise, and
        dataclass defaults are not applied for you.
        """
        if self.context_schema is None:
            return None
        values = values or {}
        validate_assignment(self.knobs, {k: v for k, v in values.items() if k in self.knobs})
        known = set(typing.get_type_hints(self.context_schema))
        unknown = sorted(set(values) - known - set(self.knobs))
        if unknown:
            raise KnobError(f"{unknown} are not fields of context schema {self.context_schema.__name__} "
                            f"(fields: {sorted(known)})")
        fields = {k: v for k, v in {**defaults(self.knobs), **self.context_values, **values}.items() if k in known}
        name = self.context_schema.__name__
        hint = ("give fields that are not knobs with --context '{\"field\": ...}' "
                "(optimize(..., context={...}) in Python)")
        if is_typeddict(self.context_schema):
            missing = sorted(set(self.context_schema.__required_keys__) - set(fields))
            if missing:
                raise KnobError(f"cannot build context {name} from fields {sorted(fields)}: it requires {missing}; "
                                f"{hint}")
            return fields
        try:
            return self.context_schema(**fields)
        except (TypeError, ValueError) as exc:
            raise KnobError(f"cannot build context {name} from fields {sorted(fields)}: {exc}; {hint}") from exc

    def config(self, values: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """A run config carrying the knob values in ``configurable`` (the path for older agents),
        on top of ``run_config`` (``extra`` wins over both)."""
        base = self.run_config
        configurable = {**base.get("configurable", {}), **self.knob_values(values), **extra.pop("configurable", {})}
        return {**base, **extra, "configurable": configurable}

    def run_store(self) -> BaseStore | None:
        """The LangGraph store one run uses: a copy of the graph's ``InMemoryStore`` as it was
        loaded, so no run reads what another run wrote (an optimization compares runs, whose
        scores must not depend on their order); any other store is the graph's own, shared by
        every run as LangGraph shares it."""
        store = self._compile_kwargs.get("store")
        return _copy_store(store) if isinstance(store, InMemoryStore) else store

    def compile(self, checkpointer: Checkpointer = None, *, builder: StateGraph | None = None,
                **kwargs: Any) -> CompiledStateGraph:
        """Compile the graph (or ``builder``, a modified copy of it, as replay uses) with read
        tracking on every node that receives the state as a mapping."""
        builder = builder or self.builder
        graph = builder.compile(checkpointer=checkpointer, **{**self._compile_kwargs, **kwargs})
        graph.step_timeout = self.step_timeout
        for name, node in graph.nodes.items():
            if name in builder.nodes and node.mapper is None and isinstance(node.channels, list):
                node.mapper = ReadTracker
        return graph


def with_runtime(config: dict[str, Any], context: Any = None, store: BaseStore | None = None) -> dict[str, Any]:
    """``config`` carrying ``context`` and ``store`` as the run's LangGraph runtime: for calls
    that take no ``context`` argument (``update_state`` runs routers, which may read it), and
    to give a run its own store (``System.run_store``)."""
    if context is None and store is None:
        return config
    runtime = Runtime(context=context, store=store)
    return {**config, "configurable": {**config.get("configurable", {}), CONFIG_KEY_RUNTIME: runtime}}


def _copy_store(store: InMemoryStore) -> InMemoryStore:
    """A new ``InMemoryStore`` holding copies of ``store``'s items and vectors, with its index."""
    fresh = InMemoryStore()
    fresh.index_config, fresh.embeddings = store.index_config, getattr(store, "embeddings", None)
    for namespace, items in store._data.items():  # the names LangGraph's in-memory API keeps stable
        fresh._data[namespace] = {key: copy.deepcopy(item) for key, item in items.items()}
    for namespace, vectors in store._vectors.items():
        fresh._vectors[namespace].update({key: dict(paths) for key, paths in vectors.items()})
    return fresh


def inspect(target: Any) -> SystemGraph:
    """The system graph of a builder, compiled graph, factory or ``"file.py:attr"`` target."""
    return System.load(target).graph

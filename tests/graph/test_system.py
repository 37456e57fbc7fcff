"""Introspection: every graph shape, the JSON format, Mermaid, loading targets, knobs and context."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Annotated, NotRequired

import pytest
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from typer.testing import CliRunner
from typing_extensions import TypedDict

import optimas_lg
from optimas_lg.cli import app
from optimas_lg.errors import KnobError, TargetError
from optimas_lg.graph.knobs import Choice, IntRange, Prompt
from optimas_lg.graph.system import System
from tests.graphs import shapes

SHAPES = "tests/graphs/shapes.py"
ORDERS = "tests/graphs/orders.py"


def edges(graph, kind=None):
    return {(e.source, e.target) for e in graph.edges if kind is None or e.kind == kind}


def test_sequential_nodes_docs_knobs_and_json():
    graph = optimas_lg.inspect(shapes.sequential())
    assert list(graph.nodes) == ["rewrite", "retrieve", "answer"]
    assert graph.nodes["rewrite"].doc == "Turn the question into a search query."
    assert graph.nodes["retrieve"].knobs == ("top_k",)
    assert edges(graph, "static") == {("__start__", "rewrite"), ("rewrite", "retrieve"), ("retrieve", "answer"),
                                      ("answer", "__end__")}
    assert graph.cycles == [] and graph.dynamic == []
    data = json.loads(json.dumps(graph.to_json()))
    assert data["format"] == "optimas-lg/system-graph" and data["version"] == 1
    assert data["knobs"]["top_k"] == {"node": "retrieve", "kind": "int", "default": 2, "low": 1, "high": 5,
                                      "log": False, "step": 1}
    assert data["knobs"]["style"]["options"] == ["plain", "upper"]
    assert data["nodes"]["answer"]["knobs"] == ["style"]
    assert data["context_schema"] == "QAConfig"


class _Retriever:
    """Fetch the documents for the query."""

    def __call__(self, state: dict) -> dict:
        return {}


class _Caller:
    def __call__(self, state: dict) -> dict:
        """Call the thing."""
        return {}


def _agent(state: dict, llm: str) -> dict:
    """Answer with the model bound in."""
    return {}


def test_a_callable_class_node_is_described_by_its_docstring_a_library_wrapper_is_not():
    from langgraph.prebuilt import ToolNode

    g = StateGraph(shapes.QA)
    g.add_node("retrieve", _Retriever())
    g.add_node("call", _Caller())
    g.add_node("agent", functools.partial(_agent, llm="local/smollm2-135m"))
    g.add_node("tools", ToolNode([shapes.add]))
    g.add_node("sub", shapes.async_graph().compile())
    g.add_edge(START, "retrieve")
    docs = {name: node.doc for name, node in optimas_lg.inspect(g).nodes.items()}
    assert docs == {"retrieve": "Fetch the documents for the query.", "call": "Call the thing.", "tools": None,
                    "sub": None, "agent": "Answer with the model bound in."}


def test_conditional_with_hint_is_static_and_reports_the_loop():
    graph = optimas_lg.inspect(shapes.conditional(typed=True))
    (branch,) = graph.branches
    assert branch.targets == ("bump", "__end__") and not branch.dynamic
    assert graph.cycles == [["bump"]]


def test_conditional_without_hint_is_dynamic_not_an_edge_to_end():
    graph = optimas_lg.inspect(shapes.conditional(typed=False))
    (branch,) = graph.branches
    assert branch.dynamic and branch.targets is None
    assert ("bump", "__end__") not in edges(graph)
    assert graph.dynamic == ["branch 'untyped_route' from 'bump': router has no Literal return hint or path_map"]
    assert optimas_lg.inspect(shapes.conditional_path_map()).branches[0].path_map == {"bump": "bump",
                                                                                       "__end__": "__end__"}


def test_a_subgraph_node_with_no_way_out_routes_its_parent():
    """Its nodes leave with ``Command(graph=Command.PARENT)``: a route known at run time, not a dead end."""
    graph = optimas_lg.inspect(shapes.parent_command())
    assert graph.dynamic == ["node 'sub': may route with Command(goto=...) to undeclared destinations"]
    assert optimas_lg.inspect(shapes.with_subgraph()).dynamic == []


def test_parallel_fan_out_and_join():
    graph = optimas_lg.inspect(shapes.parallel())
    assert [(j.sources, j.target) for j in graph.joins] == [(("b", "c"), "d")]
    assert edges(graph, "join") == {("b", "d"), ("c", "d")}
    assert {("a", "b"), ("a", "c")} <= edges(graph, "static")


def test_send_map_reduce_branch_targets():
    graph = optimas_lg.inspect(shapes.map_reduce())
    (branch,) = graph.branches
    assert branch.source == "split" and branch.targets == ("work",)


def test_compiled_subgraph_is_introspected_recursively():
    graph = optimas_lg.inspect(shapes.with_subgraph())
    sub = graph.nodes["sub"].subgraph
    assert sub is not None and list(sub.nodes) == ["double"]
    assert graph.to_json()["nodes"]["sub"]["subgraph"]["nodes"]["double"]["knobs"] == []


def test_command_destinations_typed_and_untyped():
    typed = optimas_lg.inspect(shapes.commands(typed=True))
    assert typed.nodes["decide"].command_targets == ("left", "right")
    assert edges(typed, "command") == {("decide", "left"), ("decide", "right")}
    untyped = optimas_lg.inspect(shapes.commands(typed=False))
    assert untyped.nodes["decide"].dynamic and untyped.nodes["decide"].command_targets is None


def test_react_agent_loop_and_async_nodes():
    graph = optimas_lg.inspect(shapes.react_agent())
    assert set(graph.nodes) == {"model", "tools"}
    assert graph.cycles == [["model", "tools"]]
    assert System.load(shapes.async_graph()).is_async
    assert not System.load(shapes.sequential()).is_async


def test_mermaid_shows_knobs_and_dynamic_routes():
    text = optimas_lg.inspect(shapes.sequential()).to_mermaid()
    assert text.startswith("flowchart TD") and "top_k: int" in text and "n_end" in text
    assert '{{"?"}}' in optimas_lg.inspect(shapes.conditional(typed=False)).to_mermaid()
    assert "subgraph n_sub" in optimas_lg.inspect(shapes.with_subgraph()).to_mermaid()


def test_load_targets_factories_and_compiled_graphs():
    assert list(System.load(f"{SHAPES}:sequential").graph.nodes) == ["rewrite", "retrieve", "answer"]
    assert System.load(shapes.sequential().compile()).knobs.keys() == {"rewrite_prompt", "top_k", "style"}
    assert System.load("tests.graphs.shapes:react_agent").graph.cycles
    system = System.load(shapes.sequential())
    assert System.load(lambda: system) is system  # a factory may return a System, as a suite's does
    with pytest.raises(TargetError, match="factory must take no arguments"):
        System.load(shapes.conditional)
    with pytest.raises(TargetError, match="expected a langgraph StateGraph"):
        System.load(f"{SHAPES}:CORPUS")

    from langgraph.func import entrypoint

    @entrypoint()
    def workflow(inputs: dict) -> dict:
        return inputs

    with pytest.raises(TargetError, match="is a Pregel without a StateGraph .a functional-API @entrypoint"):
        System.load(workflow)


def test_a_target_file_whose_import_fails_is_one_line_naming_the_line_and_the_folder_to_run_from(tmp_path):
    agent = tmp_path / "agents" / "agent.py"
    agent.parent.mkdir()
    agent.write_text("import os\nfrom nowhere_to_be_found import x\n")
    with pytest.raises(TargetError, match=rf"^target '{agent}:builder': importing {agent} raised ModuleNotFoundError: "
                                          rf"No module named 'nowhere_to_be_found' \(at {agent}:2\)$"):
        System.load(f"{agent}:builder")  # no folder to suggest
    agent.write_text("from helpers.text import x\n")
    (tmp_path / "helpers").mkdir()
    with pytest.raises(TargetError, match=rf"'helpers' is a package in {tmp_path}: run from that folder"):
        System.load(f"{agent}:builder")


def _one_node(name: str, node, context_schema: type) -> StateGraph:
    """A graph of the single node ``name`` (a function or a compiled subgraph)."""
    g = StateGraph(shapes.Counter, context_schema=context_schema)
    g.add_node(name, node)
    g.add_edge(START, name)
    return g


def test_knob_on_unknown_node_names_the_field():
    @dataclass
    class Bad:
        p: Annotated[str, Prompt(node="nope")] = "x"

    with pytest.raises(KnobError, match="'p'.*'nope'"):
        System.load(_one_node("bump", shapes.bump, Bad))


def test_knob_on_start_says_to_route_from_a_node():
    @dataclass
    class OnStart:
        route: Annotated[str, Choice(["a", "b"], node="__start__")] = "a"

    with pytest.raises(KnobError, match="'__start__', which is not a node: a router on START .* Route from a node"):
        System.load(_one_node("bump", shapes.bump, OnStart))


def test_knob_on_a_node_inside_a_subgraph_names_the_node_to_declare_it_on():
    @dataclass
    class Inner:
        p: Annotated[str, Prompt(node="bump")] = "x"

    outer = _one_node("count", _one_node("bump", shapes.bump, Inner).compile(), Inner)
    with pytest.raises(KnobError, match="'bump', which runs inside the subgraph node 'count': declare it as "
                                        "node='count'"):
        System.load(outer)


def test_context_and_config_carry_knobs():
    system = System.load(shapes.sequential())
    ctx = system.context({"top_k": 4})
    assert (ctx.top_k, ctx.style) == (4, "plain")
    assert system.config({"style": "upper"})["configurable"]["style"] == "upper"
    assert system.optimizable_nodes() == ["rewrite", "retrieve", "answer"]
    with pytest.raises(KnobError, match="outside"):
        system.context({"top_k": 99})
    with pytest.raises(KnobError, match="unknown knob"):
        system.knob_values({"topk": 1})


def test_cli_inspect_json_and_mermaid():
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", f"{SHAPES}:map_reduce", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["branches"][0]["targets"] == ["work"]
    result = runner.invoke(app, ["inspect", f"{SHAPES}:sequential", "--mermaid"])
    assert result.exit_code == 0 and "flowchart TD" in result.output
    result = runner.invoke(app, ["inspect", f"{SHAPES}:nothing"])
    assert result.exit_code == 1 and "'nothing'" in result.output


def test_subgraph_sharing_its_parents_context_schema():
    """The usual way to type a subgraph's ``Runtime``; its knobs are declared on the subgraph node."""
    graph = optimas_lg.inspect(f"{ORDERS}:graph")
    lookup = graph.nodes["lookup"]
    assert lookup.knobs == ("history_window", "match_slack") and lookup.subgraph is not None
    assert list(lookup.subgraph.nodes) == ["fetch", "match"]
    assert lookup.subgraph.knobs == {} and all(not n.knobs for n in lookup.subgraph.nodes.values())
    assert graph.nodes["triage"].is_async and System.load(f"{ORDERS}:graph").is_async
    assert edges(graph, "branch") == {("triage", "lookup"), ("triage", "refund_desk"), ("triage", "fallback")}
    assert graph.context_schema == "SupportConfig" and set(graph.knobs) == {
        "triage_prompt", "intent_source", "history_window", "match_slack", "refund_policy"}
    assert 'subgraph n_lookup ["lookup (subgraph)<br/><i>history_window: int</i>' in graph.to_mermaid()
    result = CliRunner().invoke(app, ["inspect", f"{ORDERS}:graph", "--json"])
    assert result.exit_code == 0, result.output
    nodes = json.loads(result.output)["nodes"]
    assert nodes["lookup"]["knobs"] == ["history_window", "match_slack"] and nodes["triage"]["is_async"]
    table = CliRunner().invoke(app, ["inspect", f"{ORDERS}:graph"], terminal_width=200).output
    assert "triage [async]" in table and "lookup [subgraph]" in table


def test_a_subgraph_with_its_own_knob_schema_is_checked_against_its_own_nodes():
    @dataclass
    class Inner:
        p: Annotated[str, Prompt(node="elsewhere")] = "x"

    inner = StateGraph(shapes.Counter, context_schema=Inner)
    inner.add_node("double", lambda s: {"n": s["n"] * 2})
    inner.add_edge(START, "double")
    g = StateGraph(shapes.Counter)
    g.add_node("sub", inner.compile())
    g.add_edge(START, "sub")
    with pytest.raises(KnobError, match=r"node 'elsewhere'.*nodes: \['double'\]"):
        System.load(g)


def test_knobs_on_a_subgraphs_own_context_schema_are_refused_not_ignored():
    @dataclass
    class Inner:
        p: Annotated[str, Prompt(node="double")] = "x"

    @dataclass
    class Outer:
        user: str = "u"

    inner = StateGraph(shapes.Counter, context_schema=Inner)
    inner.add_node("double", lambda s: {"n": s["n"] * 2})
    inner.add_edge(START, "double")
    g = StateGraph(shapes.Counter, context_schema=Outer)
    g.add_node("sub", inner.compile())
    g.add_edge(START, "sub")
    with pytest.raises(KnobError, match=r"subgraph node 'sub' declares knobs \['p'\] on its own context schema.*"
                                        r"declare them on Outer with node='sub'"):
        System.load(g)


def test_context_json_schema_offers_knob_options_and_bounds():
    """What Studio shows as the assistant's configuration: a Choice as an enum, a range with
    its bounds (on dataclass and pydantic context schemas alike)."""
    from tests.graphs import lookup, orders

    props = System.load(lookup.builder).compile(None).get_context_jsonschema()["properties"]
    assert props["style"]["enum"] == ["shout", "plain"]
    assert (props["top_k"]["minimum"], props["top_k"]["maximum"], props["top_k"]["default"]) == (1, 3, 1)
    props = System.load(orders.graph).compile(None).get_context_jsonschema()["properties"]
    assert props["intent_source"]["enum"] == ["llm", "keywords"]
    assert (props["match_slack"]["minimum"], props["match_slack"]["maximum"]) == (0, 3)
    assert "enum" not in props["triage_prompt"] and "minimum" not in props["triage_prompt"]


def test_ends_run_only_where_every_way_out_goes_to_end():
    sequential = optimas_lg.inspect(shapes.sequential())
    assert [n for n in sequential.nodes if sequential.ends_run(n)] == ["answer"]
    loop = optimas_lg.inspect(shapes.conditional(typed=True))
    assert not loop.ends_run("bump")  # may go round again
    assert not optimas_lg.inspect(shapes.conditional(typed=False)).ends_run("bump")  # targets unknown
    parallel = optimas_lg.inspect(shapes.parallel())
    assert not parallel.ends_run("b")  # feeds the join


def test_a_compiled_graphs_own_run_config_holds_in_every_run(store):
    """``graph.with_config(recursion_limit=...)`` is the user's guard against a loop that never
    ends; dropping it let such a loop run 10,000 steps."""
    from optimas_lg.data import Example
    from optimas_lg.execution.runner import run_examples

    class Count(TypedDict):
        n: int

    builder = StateGraph(Count)
    builder.add_node("step", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: "step")  # never ends
    system = System.load(builder.compile().with_config(recursion_limit=5, tags=["mine"]))
    assert system.run_config["recursion_limit"] == 5
    assert system.config({}, configurable={"thread_id": "t"}) == {
        "recursion_limit": 5, "tags": ["mine"], "configurable": {"thread_id": "t"}}
    (result,) = run_examples(system, [Example("e", {"n": 0}, {})], lambda e, o: 1.0, None, store,
                             progress=False).results
    assert "GraphRecursionError" in result.error and "Recursion limit of 5" in result.error


@dataclass
class UserContext:
    user_id: str  # required, not a knob: the agent's own run-scoped value
    greeting: Annotated[str, Prompt(node="greet")] = "hello"


class Greeted(TypedDict, total=False):
    name: str
    text: str


def greeting_graph() -> StateGraph:
    def greet(state: Greeted, runtime: Runtime[UserContext]) -> dict:
        return {"text": f"{runtime.context.greeting} {state['name']} from {runtime.context.user_id}"}

    g = StateGraph(Greeted, context_schema=UserContext)
    g.add_node("greet", greet)
    g.add_edge(START, "greet")
    return g


def test_context_fields_that_are_not_knobs_are_fixed_for_every_run(store, tmp_path):
    from optimas_lg.data import Example
    from optimas_lg.execution.runner import run_examples

    with pytest.raises(KnobError, match=r"user_id.*--context"):
        System.load(greeting_graph()).context({})
    typed = StateGraph(Greeted, context_schema=TypedDict("UserTyped", {"user_id": str, "greeting": Annotated[
        str, Prompt(node="greet", default="hello")]}))
    typed.add_node("greet", lambda state: {})
    typed.add_edge(START, "greet")
    with pytest.raises(KnobError, match=r"requires \['user_id'\].*--context"):  # a TypedDict knows its required keys
        System.load(typed).context({})
    assert System.load(typed, context={"user_id": "u1"}).context({}) == {"user_id": "u1", "greeting": "hello"}
    system = System.load(greeting_graph(), context={"user_id": "u1"})
    assert system.context({"greeting": "hi"}) == UserContext("u1", "hi")
    (result,) = run_examples(system, [Example("e", {"name": "ada"}, {})], lambda e, o: 1.0, {"greeting": "hi"},
                             store, progress=False).results
    assert result.output["text"] == "hi ada from u1"
    with pytest.raises(KnobError, match="are knobs"):
        System.load(greeting_graph(), context={"greeting": "x"})
    with pytest.raises(KnobError, match=r"\['nope'\] are not fields"):
        System.load(greeting_graph(), context={"nope": 1})

    data = tmp_path / "names.jsonl"
    data.write_text('{"id": "e", "name": "ada"}\n')
    args = ["run", "tests/graph/test_system.py:greeting_graph", "--data", str(data), "--metric",
            "tests/graphs/shapes.py:finished", "--inputs", "name", "--store", f"sqlite:///{tmp_path / 'r.db'}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "--context" in result.output
    result = CliRunner().invoke(app, [*args, "--context", '{"user_id": "u2"}'])
    assert result.exit_code == 0 and "mean score 1.0000 over 1 runs" in result.output, result.output


def test_a_default_outside_its_knobs_space_names_the_field_and_schema():
    @dataclass
    class Bad:
        repeat: Annotated[int, IntRange(1, 3, node="greet")] = 7

    builder = StateGraph(Greeted, context_schema=Bad)
    builder.add_node("greet", lambda s: {})
    builder.add_edge(START, "greet")
    with pytest.raises(KnobError, match=r"the default of field 'repeat' of Bad: knob 'repeat': 7 is outside"):
        System.load(builder)


class TypedContext(TypedDict):
    greeting: Annotated[str, Prompt(node="greet", default="hello")]
    repeat: NotRequired[Annotated[int, IntRange(1, 3, node="greet", default=2)]]


def test_a_typeddict_context_carries_its_knobs_defaults_on_the_knobs(store):
    """A TypedDict field cannot have a default, so the knob carries it; LangGraph users
    write context schemas as TypedDicts as often as dataclasses."""
    from optimas_lg.data import Example
    from optimas_lg.execution.runner import run_examples

    def greet(state: Greeted, runtime: Runtime[TypedContext]) -> dict:
        return {"text": " ".join([runtime.context["greeting"]] * runtime.context["repeat"]) + f" {state['name']}"}

    builder = StateGraph(Greeted, context_schema=TypedContext)
    builder.add_node("greet", greet)
    builder.add_edge(START, "greet")
    system = System.load(builder)
    assert {n: s.default for n, s in system.knobs.items()} == {"greeting": "hello", "repeat": 2}
    assert system.graph.to_json()["knobs"]["repeat"] == {"node": "greet", "kind": "int", "default": 2, "low": 1,
                                                         "high": 3, "log": False, "step": 1}
    (result,) = run_examples(system, [Example("e", {"name": "ada"}, {})], lambda e, o: 1.0, {"repeat": 3},
                             store, progress=False).results
    assert result.output["text"] == "hello hello hello ada"

    class NoDefault(TypedDict):
        greeting: Annotated[str, Prompt(node="greet")]

    class TwoDefaults:
        greeting: Annotated[str, Prompt(node="greet", default="a")] = "b"

    for schema, message in [(NoDefault, "has no default.*default=...*TypedDict"), (dataclass(TwoDefaults),
                            "two defaults, 'b' on the field and 'a' on its knob")]:
        builder = StateGraph(Greeted, context_schema=schema)
        builder.add_node("greet", lambda s: {})
        builder.add_edge(START, "greet")
        with pytest.raises(KnobError, match=message):
            System.load(builder)


def test_inputs_the_graph_would_drop_are_refused_before_any_run(tmp_path):
    """LangGraph drops an input key its schema lacks, so a misspelt field ran every example
    from an empty state and scored 0 without a word."""
    from optimas_lg.data import Example
    from optimas_lg.errors import DataError

    system = System.load(shapes.sequential())
    system.check_inputs([Example("a", {"question": "q", "difficulty": 2}, {})], ["question"])  # extras dropped
    with pytest.raises(DataError, match=r"input fields \['qestion'\] are not keys of the graph's input schema"):
        system.check_inputs([], ["qestion"])
    with pytest.raises(DataError, match=r"example 'b' gives none of the graph's input keys.*\['qestion'\]"):
        system.check_inputs([Example("a", {"question": "q"}, {}), Example("b", {"qestion": "q"}, {})])

    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "1", "qestion": "q"}\n')
    result = CliRunner().invoke(app, ["run", f"{SHAPES}:sequential", "--data", str(data), "--metric",
                                      f"{SHAPES}:finished", "--inputs", "qestion",
                                      "--store", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 1 and "['qestion'] are not keys" in result.output, result.output


def test_an_unannotated_node_with_no_edge_out_may_route_by_command():
    from langgraph.types import Command

    def triage(state: Greeted):  # returns Command(goto=...), unannotated as most users write it
        return Command(goto="fast", update={"text": "t"})

    def fast(state: Greeted) -> dict:
        return {}

    builder = StateGraph(Greeted)
    builder.add_node("triage", triage)
    builder.add_node("fast", fast)
    builder.add_edge(START, "triage")
    graph = System.load(builder).graph
    assert graph.nodes["triage"].dynamic and any("triage" in d for d in graph.to_json()["dynamic"])
    assert not graph.nodes["fast"].dynamic  # annotated: a dead end, as it says


def test_a_file_target_has_the_same_module_name_in_every_process():
    """Stored values name the state's types by module: a resumed job (a new process) must find them."""
    import subprocess
    import sys

    from optimas_lg.graph.target import load_target

    code = f"from optimas_lg.graph.target import load_target; print(load_target('{SHAPES}:QA').__module__)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "1"}).stdout.strip()
    here = load_target(f"{SHAPES}:QA").__module__
    assert other == here and here.startswith("_optimas_target_shapes_")


def test_optimize_takes_the_context_fields_that_are_not_knobs(store):
    from optimas_lg.api import optimize
    from optimas_lg.data import Example

    examples = [Example(f"e{i}", {"name": f"n{i}"}, {}) for i in range(12)]

    def metric(example: Example, output: dict) -> float:
        return float(output["text"].endswith("from u1"))

    settings = {"gate": {"min_examples": 5}, "write_report": False}
    result = optimize(greeting_graph(), examples[:6], metric, valset=examples[6:], context={"user_id": "u1"},
                      store=store, settings=settings, max_iterations=0, progress=False)  # no round, no LLM
    assert result.val_before == 1.0  # every run saw user_id
    with pytest.raises(KnobError, match=r"optimize\(\.\.\., context="):
        optimize(greeting_graph(), examples[:6], metric, valset=examples[6:], store=store, settings=settings,
                 max_iterations=0, progress=False)

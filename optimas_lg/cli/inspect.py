"""``optimas-lg inspect TARGET``: show the system graph Optimas sees (nodes, routes, knobs)."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from optimas_lg.cli.common import console, friendly_errors
from optimas_lg.graph.system import System


@friendly_errors
def inspect(
    target: str = typer.Argument(..., help="path/to/file.py:attr or package.module:attr naming a StateGraph "
                                 "builder, a compiled graph or a zero-argument factory"),
    as_json: bool = typer.Option(False, "--json", help="Print the system graph as JSON (stable format)."),
    mermaid: bool = typer.Option(False, "--mermaid", help="Print a Mermaid flowchart with each node's knobs."),
) -> None:
    """Introspect a LangGraph graph: nodes, edges, joins, branches, subgraphs, knobs, cycles."""
    graph = System.load(target).graph
    if as_json:
        print(json.dumps(graph.to_json(), indent=2))
        return
    if mermaid:
        print(graph.to_mermaid())
        return
    table = Table(title=f"{target} ({len(graph.nodes)} nodes)")
    for column in ("node", "knobs", "goes to", "doc"):
        table.add_column(column)
    for name, info in graph.nodes.items():
        targets = sorted(graph.successors(name)) + (["?"] if name in {b.source for b in graph.branches
                                                                      if b.dynamic} or info.dynamic else [])
        knobs = ", ".join(f"{k} ({graph.knobs[k].kind})" for k in info.knobs)
        kind = " [subgraph]" if info.subgraph else " [async]" if info.is_async else ""
        # escaped: rich would read "[async]" as a markup tag and drop it
        table.add_row(escape(name + kind), knobs, ", ".join(targets), escape((info.doc or "").split("\n")[0]))
    console.print(table)
    for cycle in graph.cycles:
        console.print(f"cycle: {' -> '.join(cycle)}", highlight=False)
    for reason in graph.dynamic:
        console.print(f"dynamic: {reason}", highlight=False)

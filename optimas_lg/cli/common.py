"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from optimas_lg.errors import KnobError, OptimasError, ServerError
from optimas_lg.execution.server import Server
from optimas_lg.home import default_store_url
from optimas_lg.store.store import DATABASE_DOWN, database_down

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one error, one line: never wrapped


def store_help() -> str:
    """``--store``'s help, with the default this environment gives (read when the CLI loads)."""
    return ("SQLAlchemy URL of the run store (default: $OPTIMAS_LG_STORE, else optimas.db in $OPTIMAS_LG_HOME; "
            f"here {default_store_url(create=False)})")


StoreOption = typer.Option(None, "--store", help=store_help())
SERVER_HELP = "URL of the LangGraph Server (e.g. http://127.0.0.1:2024 from `langgraph dev`)."
GRAPH_HELP = "Graph id on the server (a key of `graphs` in its langgraph.json)."
KEY_HELP = ("Row field with a unique example id, which every row must have (default: the 'id' field, "
            "else the row number, counted apart in each data file).")
RunOnServerOption = typer.Option(None, "--server", metavar="URL", help=SERVER_HELP + " Every run, node replay "
                                 "and rollout executes there instead of in this process (needs --graph).")
GraphIdOption = typer.Option(None, "--graph", metavar="GRAPH_ID", help=GRAPH_HELP + " It must serve TARGET's code.")


def server_of(url: str | None, graph_id: str | None) -> Server | None:
    """The ``Server`` that ``--server`` and ``--graph`` name together (``None``: run here)."""
    if url is None and graph_id is None:
        return None
    if not (url and graph_id):
        raise ServerError("give --server URL and --graph GRAPH_ID together (the graph id is the key of "
                          "`graphs` in the server's langgraph.json)")
    return Server(url, graph_id)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn an ``OptimasError`` into a one-line message and exit code 1 (no traceback).

    The line is the error's own text, neither read as Rich markup (a ``[...]`` in a path
    would vanish) nor broken at the terminal width.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OptimasError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
        except DATABASE_DOWN as exc:
            err_console.print(f"[bold red]error:[/] {escape(database_down(exc))}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


def knob_values(text: str | None) -> dict[str, Any]:
    """Knob values from a JSON object given inline or as a file path (``--config``)."""
    return json_object(text, "--config", "knob values")


def context_values(text: str | None) -> dict[str, Any]:
    """Fixed values of the context schema's non-knob fields (``--context``)."""
    return json_object(text, "--context", "context fields")


def json_object(text: str | None, option: str, what: str) -> dict[str, Any]:
    """A JSON object given inline or as a file path to ``option``."""
    if not text:
        return {}
    path = Path(text)
    source = path.read_text() if not text.lstrip().startswith("{") and path.is_file() else text
    try:
        values = json.loads(source)
    except json.JSONDecodeError as exc:
        raise KnobError(f"{option} must be a JSON object or a JSON file: {exc.msg} in {text[:60]!r}") from exc
    if not isinstance(values, dict):
        raise KnobError(f"{option} must be a JSON object of {what}, got {type(values).__name__}")
    return values


ContextOption = typer.Option(None, "--context", help="Fixed values of the context schema's fields that are not "
                             "knobs (a required user_id, say), as a JSON object or JSON file.")

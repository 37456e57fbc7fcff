"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from optimas_lg.errors import OptimasError

console = Console()
err_console = Console(stderr=True)

StoreOption = typer.Option(None, "--store", help="SQLAlchemy URL of the run store "
                           "(default: $OPTIMAS_LG_STORE or sqlite:///storage/optimas.db)")

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn an ``OptimasError`` into a one-line message and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OptimasError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]

"""``optimas-lg serve``: the local models behind an OpenAI-compatible endpoint."""

from __future__ import annotations

import typer

from optimas_lg.cli.common import friendly_errors


@friendly_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    model: list[str] | None = typer.Option(None, "--model", help="Model to preload, e.g. local/smollm2-135m "
                                              "(repeatable; others load on first use)."),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Requests decoded together."),
    max_wait: float = typer.Option(0.02, "--max-wait", min=0.0, help="Batching window in seconds."),
) -> None:
    """Serve local models at http://HOST:PORT/v1 until interrupted.

    Agents in other processes use it when OPTIMAS_LG_LLM_URL points at it.
    """
    from optimas_lg.llm.server import serve as run_server

    run_server(host, port, list(model or []), max_batch, max_wait)

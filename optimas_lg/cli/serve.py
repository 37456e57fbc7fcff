"""``optimas-lg serve``: the local models behind an OpenAI-compatible endpoint."""

from __future__ import annotations

import typer

from optimas_lg.cli.common import friendly_errors
from optimas_lg.llm.server import CACHE_ENTRIES, FOLDERS_FLAG, MAX_REQUEST_BYTES, ServerOptions
from optimas_lg.llm.server import serve as run_server


@friendly_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    model: list[str] | None = typer.Option(None, "--model", help="Model to preload, e.g. local/smollm2-135m "
                                              "(repeatable; others load on first use)."),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Requests decoded together."),
    max_wait: float = typer.Option(0.02, "--max-wait", min=0.0, help="Batching window in seconds."),
    max_request_bytes: int = typer.Option(MAX_REQUEST_BYTES, "--max-request-bytes", min=1,
                                          help="Larger request bodies are refused (HTTP 413)."),
    allow_model_folders: bool = typer.Option(False, FOLDERS_FLAG, help="Let any client name any local model "
                                             "folder (default: registered models, saved adapters, --model)."),
    cache_entries: int = typer.Option(CACHE_ENTRIES, "--cache-entries", min=0, help="Answers to greedy or seeded "
                                      "requests kept and given again without decoding (0: none)."),
) -> None:
    """Serve local models at http://HOST:PORT/v1 until interrupted.

    Agents in other processes use it when OPTIMAS_LG_LLM_URL points at it.
    """
    run_server(host, port, list(model or []),
               ServerOptions(max_batch, max_wait, max_request_bytes, allow_model_folders, cache_entries))

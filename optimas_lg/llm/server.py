"""An OpenAI-compatible HTTP server for the local models, on 127.0.0.1 by default.

Serving the models over HTTP lets agents use plain ``ChatOpenAI(base_url=...)`` (async
included, which ``ChatHuggingFace`` lacks), lets other frameworks share the very same
model, and lets a request pick a LoRA adapter by model name (``base@adapter``, as vLLM
does). ``start_server`` runs one for a test or a script, ``ensure_server`` keeps one per
process for the chat model factory, and ``serve`` is the ``optimas-lg serve`` command.

Any local process can reach the port, so the server guards itself: a request body over
``max_request_bytes`` is refused (413) before it is read, a request whose client
disconnects stops decoding, and a client can name only the registered models, saved
adapters and the folders the server was started with (any folder with
``allow_model_folders``).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optimas_lg.errors import ModelNotFoundError, ModelServerError
from optimas_lg.llm.engine import FOLDERS_FLAG, ChatJob, ModelPool, RequestError
from optimas_lg.llm.schema import ChatCompletionRequest, completion_body, error_body, stream_chunks

URL_ENV = "OPTIMAS_LG_LLM_URL"
DEFAULT_HOST = "127.0.0.1"
# A 32k-token context is ~130 kB of JSON text: 1 MiB leaves room for any real prompt while
# bounding what one request can cost to tokenize (~2 s for 1 MiB).
MAX_REQUEST_BYTES = 1 << 20
# Kept answers to deterministic requests: a few hundred bytes each, so ~20 MB at most.
CACHE_ENTRIES = 50_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    """How a server batches, and what it accepts from its clients."""

    max_batch: int = 8
    max_wait: float = 0.02
    max_request_bytes: int = MAX_REQUEST_BYTES
    allow_model_folders: bool = False
    cache_entries: int = CACHE_ENTRIES

    def pool(self) -> ModelPool:
        return ModelPool(self.max_batch, self.max_wait, self.allow_model_folders, self.cache_entries)

    def args(self) -> list[str]:
        """These options as ``python -m optimas_lg.llm.server`` arguments."""
        out = ["--max-batch", str(self.max_batch), "--max-wait", str(self.max_wait),
               "--max-request-bytes", str(self.max_request_bytes), "--cache-entries", str(self.cache_entries)]
        return out + [FOLDERS_FLAG] if self.allow_model_folders else out


def create_app(pool: ModelPool, max_request_bytes: int = MAX_REQUEST_BYTES) -> FastAPI:
    """The FastAPI app serving ``pool``: ``/v1/chat/completions``, ``/v1/models``, ``/health``."""
    app = FastAPI(title="optimas-lg local models")
    app.add_middleware(_BodyLimit, limit=max_request_bytes)

    @app.exception_handler(413)
    async def _too_large(_: Request, exc: HTTPException) -> JSONResponse:
        return _too_large_response(max_request_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse(error_body(f"invalid request: {problems}", "invalid_request_error"), status_code=400)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "loaded": pool.loaded(), "batching": pool.stats.to_dict(),
                "cache": pool.cache.stats.to_dict()}

    @app.get("/v1/models")
    async def models() -> dict:
        ids = await asyncio.to_thread(pool.model_ids)
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "optimas-lg"} for i in ids]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest, http: Request) -> dict | JSONResponse | StreamingResponse:
        tools = request.tool_spec()
        job = ChatJob([m.as_template_input() for m in request.messages], request.sampling_params(), tools)
        try:
            future = await asyncio.to_thread(pool.submit, request.model, job)
            result = await _unless_disconnected(http, future)
        except _ClientGone:
            pool.cancel(future)
            return JSONResponse(error_body("the client disconnected", "cancelled"), status_code=499)
        except ModelNotFoundError as exc:
            return JSONResponse(error_body(str(exc), "not_found_error", "model_not_found"), status_code=404)
        except RequestError as exc:
            return JSONResponse(error_body(str(exc), "invalid_request_error"), status_code=400)
        except ModelServerError as exc:
            return JSONResponse(error_body(str(exc), "server_error"), status_code=503)
        except Exception as exc:  # noqa: BLE001 - one failed generation must not take the server down
            log.exception("generation failed for model %s", request.model)
            message = f"generation failed: {type(exc).__name__}: {exc}"
            return JSONResponse(error_body(message, "server_error"), status_code=500)
        if not request.stream:
            return completion_body(request.model, result, tools)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        chunks = stream_chunks(request.model, result, include_usage, tools)

        async def events() -> AsyncIterator[str]:
            for chunk in chunks:
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def _too_large_response(limit: int) -> JSONResponse:
    message = (f"the request body is over this server's limit of {limit} bytes; shorten the messages "
               "(or start the server with a larger --max-request-bytes)")
    return JSONResponse(error_body(message, "invalid_request_error", "request_too_large"), status_code=413)


class _BodyLimit:
    """Refuse a request body over ``limit`` bytes (413): from its Content-Length before a
    byte is read, or as soon as a body without one passes the limit. (Starlette's own
    limit answers in plain text, which OpenAI clients cannot show.)"""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            return await _too_large_response(self.limit)(scope, receive, send)
        read = 0

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.limit:
                raise HTTPException(413)  # answered by the app's 413 handler
            return message

        await self.app(scope, counted, send)


class _ClientGone(Exception):
    """The client disconnected before its result was ready."""


async def _unless_disconnected(http: Request, future: Future) -> Any:
    """``future``'s result, or ``_ClientGone`` as soon as the client has disconnected."""
    result = asyncio.wrap_future(future)

    async def disconnected() -> None:
        while (await http.receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({result, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not result.done():
        result.cancel()  # nobody will read it
        raise _ClientGone
    return result.result()


class ServerHandle:
    """A running server; ``stop()`` it, or use it as a context manager. ``pool`` is the
    in-process server's model pool (``None`` for a child process)."""

    def __init__(self, base_url: str, stop: Callable[[], None], pool: ModelPool | None = None):
        self.base_url = base_url
        self.pool = pool
        self._stop = stop
        self._stopped = False

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._stop()

    @property
    def running(self) -> bool:
        return not self._stopped

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_server(
    models: list[str] | None = None,
    port: int | None = None,
    in_process: bool = True,
    host: str = DEFAULT_HOST,
    max_batch: int = 8,
    max_wait: float = 0.02,
    timeout: float = 300.0,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    allow_model_folders: bool = False,
    cache_entries: int = CACHE_ENTRIES,
) -> ServerHandle:
    """Start a server on ``host:port`` (a free port if ``None``) with ``models`` preloaded.

    In process, uvicorn runs on a thread and shares this process's cores and memory;
    out of process, ``python -m optimas_lg.llm.server`` runs as a child. Returns once
    the server answers. Clients may name a model folder only if it is among ``models``
    or ``allow_model_folders`` is set. Up to ``cache_entries`` answers to greedy or
    seeded requests are kept and given again without decoding (0 keeps none).
    """
    options = ServerOptions(max_batch, max_wait, max_request_bytes, allow_model_folders, cache_entries)
    if in_process:
        return _start_thread(models or [], port, host, options)
    return _start_child(models or [], port, host, options, timeout)


def _start_thread(models: list[str], port: int | None, host: str, options: ServerOptions) -> ServerHandle:
    pool = options.pool()
    try:
        pool.preload(models)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port or 0))  # binding here, not in uvicorn, leaves no race for the port
    except BaseException:
        pool.close()
        raise
    server = uvicorn.Server(uvicorn.Config(create_app(pool, options.max_request_bytes), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="optimas-lg-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pool.close()
            sock.close()
            raise ModelServerError(f"the local model server on {host}:{sock.getsockname()[1]} failed to start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        pool.close()
        sock.close()

    return ServerHandle(f"http://{host}:{sock.getsockname()[1]}", stop, pool)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _start_child(models: list[str], port: int | None, host: str, options: ServerOptions,
                 timeout: float) -> ServerHandle:
    port = port or _free_port(host)
    command = [sys.executable, "-m", "optimas_lg.llm.server", "--host", host, "--port", str(port), *options.args()]
    for model in models:
        command += ["--model", model]
    log_file = tempfile.NamedTemporaryFile(prefix="optimas-lg-server-", suffix=".log", delete=False)
    # Passive OpenMP waits: spinning threads collapse throughput when cores are shared.
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
    child = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://{host}:{port}"

    def stop() -> None:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        log_file.close()
        Path(log_file.name).unlink(missing_ok=True)

    deadline = time.monotonic() + timeout
    while _health_problem(url, 1.0) is not None:
        if child.poll() is not None or time.monotonic() > deadline:
            stop_reason = "exited" if child.poll() is not None else f"did not answer within {timeout:.0f} s"
            tail = Path(log_file.name).read_text(errors="replace")[-2000:]
            stop()
            raise ModelServerError(f"the local model server ({' '.join(command)}) {stop_reason}; its log ends:\n{tail}")
        time.sleep(0.2)
    return ServerHandle(url, stop)


def _health_problem(url: str, timeout: float) -> str | None:
    """``None`` if ``url/health`` answers 200, else what went wrong."""
    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


_default: ServerHandle | None = None
_default_lock = threading.Lock()


def ensure_server(folder: str | None = None) -> str:
    """The base URL (no ``/v1``) of this process's model server, started on first call;
    it serves the model folder ``folder`` too when this process names one.

    With ``OPTIMAS_LG_LLM_URL`` set, that server is used instead, and it must answer (and
    have been started with ``--model FOLDER`` or ``--allow-model-folders`` for a folder).
    """
    global _default
    configured = os.environ.get(URL_ENV)
    if configured:
        url = configured.rstrip("/").removesuffix("/v1")
        problem = _health_problem(url, 5.0)
        if problem is not None:
            raise ModelServerError(
                f"{URL_ENV}={configured} does not answer {url}/health ({problem}); start it with "
                f"`optimas-lg serve --port N` or unset {URL_ENV} to run a server inside this process"
            )
        return url
    with _default_lock:
        if _default is None or not _default.running:
            _default = start_server()
            atexit.register(_default.stop)
        if folder is not None and _default.pool is not None:
            _default.pool.allow(folder)
        return _default.base_url


def serve(host: str = DEFAULT_HOST, port: int = 8000, models: list[str] | None = None,
          options: ServerOptions = ServerOptions()) -> None:
    """Run the server in the foreground until interrupted (``optimas-lg serve``)."""
    pool = options.pool()
    try:
        pool.preload(models or [])
        print(f"optimas-lg local models at http://{host}:{port}/v1 (loaded: {pool.loaded() or 'on first use'})")
        uvicorn.run(create_app(pool, options.max_request_bytes), host=host, port=port, log_level="info")
    finally:
        pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=serve.__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", action="append", default=[], help="model to preload (repeatable)")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait", type=float, default=0.02, help="batching window in seconds")
    parser.add_argument("--max-request-bytes", type=int, default=MAX_REQUEST_BYTES)
    parser.add_argument(FOLDERS_FLAG, action="store_true", help="let clients name any local model folder")
    parser.add_argument("--cache-entries", type=int, default=CACHE_ENTRIES,
                        help="answers to greedy or seeded requests kept (0: none)")
    args = parser.parse_args()
    serve(args.host, args.port, args.model,
          ServerOptions(args.max_batch, args.max_wait, args.max_request_bytes, args.allow_model_folders,
                        args.cache_entries))

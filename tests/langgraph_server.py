"""A real ``langgraph dev`` server serving the repo's ``langgraph.json``, offline, for tests.

Isolation: the in-memory runtime writes its state to ``./.langgraph_api`` and resolves the
config's paths against its working directory, so the server runs in a temp folder that
mirrors the repo's top level with symlinks; its storage home (``OPTIMAS_LG_HOME``) is
private, while the converted-model cache is shared (``OPTIMAS_LG_MODEL_CACHE``) so the
GGUF is not converted again. Telemetry and the PyPI version check are switched off, so
nothing leaves the machine. ``langgraph dev`` silently takes another port when N is
busy, so the URL is read from its banner. The server's process group (with any model
server it started) is killed when the context ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH = Path(sys.executable).with_name("langgraph")
STARTUP_TIMEOUT = 60.0  # importing every graph (torch, transformers) on 2 busy cores
REQUEST_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
NOT_MIRRORED = {".git", ".venv", ".langgraph_api", "storage", "langgraph.json", ".pytest_cache"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model_cache() -> str:
    """The converted-model cache this environment already uses (see ``optimas_lg.llm.registry``)."""
    if os.environ.get("OPTIMAS_LG_MODEL_CACHE"):
        return os.environ["OPTIMAS_LG_MODEL_CACHE"]
    home = Path(os.environ.get("OPTIMAS_LG_HOME", REPO / "storage")).expanduser()
    return str((home if home.is_absolute() else REPO / home).resolve() / "models")


def log_lines(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log_lines(log)[-lines:])


def first_traceback(log: Path, since: int = 0, lines: int = 30) -> str:
    """The first traceback the server logged after line ``since`` (the root cause of a
    failed run), else the log's tail."""
    text = log_lines(log)
    starts = [i for i, line in enumerate(text) if i >= since and line.startswith("Traceback (most recent call last)")]
    if not starts:
        return log_tail(log, lines)
    return "\n".join(text[max(starts[0] - 1, 0):starts[0] + lines])


class DevServer:
    """A running ``langgraph dev`` server and what a test needs to talk to it."""

    def __init__(self, url: str, graphs: dict[str, str], log: Path, home: Path):
        self.url, self.graphs, self.log, self.home = url, graphs, log, home
        self.http = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT)
        self._assistants: dict[str, dict] | None = None

    def assistants(self) -> dict[str, dict]:
        """The system-created assistant of each graph, by graph id."""
        if self._assistants is None:
            response = self.http.post("/assistants/search", json={"limit": 100})
            response.raise_for_status()
            self._assistants = {a["graph_id"]: a for a in response.json()
                                if a["metadata"].get("created_by") == "system"}
        return self._assistants

    def assistant_id(self, graph_id: str) -> str:
        return self.assistants()[graph_id]["assistant_id"]


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the server's whole process group; kill it if it lingers."""
    try:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=STOP_TIMEOUT)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
    finally:
        try:  # a child that outlived its parent (e.g. a model server) is still in the group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def langgraph_dev(root: Path) -> Iterator[DevServer]:
    """``langgraph dev`` on a free loopback port, serving the repo's graphs from a mirror
    folder under ``root`` (which also holds its log and storage home)."""
    cwd = root / "cwd"
    cwd.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in NOT_MIRRORED:
            (cwd / entry.name).symlink_to(entry)
    config = json.loads((REPO / "langgraph.json").read_text())
    # A graph whose file another change has not added yet would stop the whole server.
    graphs = {gid: spec for gid, spec in config["graphs"].items() if (cwd / spec.split(":")[0]).is_file()}
    (cwd / "langgraph.json").write_text(json.dumps({**config, "graphs": graphs}, indent=2))

    env = {k: v for k, v in os.environ.items()
           if k not in {"OPTIMAS_LG_STORE", "OPTIMAS_LG_LLM_URL", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"}}
    env.update(
        OPTIMAS_LG_MODEL_CACHE=_model_cache(),
        OPTIMAS_LG_HOME=str(root / "home"),
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",  # the CLI otherwise posts a usage event on start
        LANGGRAPH_NO_VERSION_CHECK="true",  # the server otherwise asks PyPI for newer versions
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    port = _free_port()
    log = root / "langgraph-dev.log"
    command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = None
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with code {proc.returncode} before serving; log:\n{log_tail(log)}")
            if url is None:
                # langgraph dev silently moves to another port when N is taken: use the one it prints
                printed = re.search(r"API: (http://127\.0\.0\.1:\d+)", "\n".join(log_lines(log)))
                url = printed.group(1) if printed else None
            try:
                if url is not None and httpx.get(f"{url}/ok", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not healthy after {STARTUP_TIMEOUT:.0f}s; log:\n{log_tail(log)}")
            time.sleep(0.25)
        server = DevServer(url, graphs, log, root / "home")
        try:
            yield server
        finally:
            server.http.close()
    finally:
        _stop(proc)

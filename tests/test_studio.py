"""LangGraph Studio: ``langgraph dev`` serves the repo's ``langgraph.json`` offline.

The Studio UI is a hosted page; what it shows comes from the local server, so this test
starts the real server (``langgraph dev --no-browser --no-reload --port N``) and checks
what Studio would read from it:

- ``POST /assistants/search`` lists one assistant per graph in ``langgraph.json``;
- ``GET /assistants/{id}/graph`` draws the optimizer loop with all its nodes, the
  straight edges and the two routers as conditional edges (and no router drawn as an
  edge to ``__end__``, the sign of a routing function without a ``Literal`` hint);
- ``GET /assistants/{id}/schemas`` exposes ``LoopContext`` as the context schema (the
  assistant's editable configuration), and an assistant version with an edited context
  can be saved and read back;
- ``POST /threads`` + ``POST /threads/{id}/runs/wait`` runs the offline example agent on
  one question and returns a final state with an answer (skipped while
  ``examples/offline_qa/agent.py`` does not exist);
- a streamed run of the loop preset for the offline example (``optimize_offline_qa``) with
  its default configuration gets through ``start``: the default target, metric and data
  resolve and a job opens in the store (then cancelled).

Isolation: the in-memory runtime writes its state to ``./.langgraph_api`` and resolves the
config's paths against its working directory, so the server runs in a temp folder that
mirrors the repo's top level with symlinks; its storage home (``OPTIMAS_LG_HOME``) is
private, while the converted-model cache is shared (``OPTIMAS_LG_MODEL_CACHE``) so the
GGUF is not converted again. Telemetry and the PyPI version check are switched off, so
nothing leaves the machine. ``langgraph dev`` silently takes another port when N is
busy, so the URL is read from its banner. The server's process group (with any model
server it started) is killed at teardown.
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
from pathlib import Path

import pytest

from optimas_lg.store import Store
from optimas_lg.store import models as m

httpx = pytest.importorskip("httpx")
pytest.importorskip("langgraph_api", reason="needs the dev extra: langgraph-cli[inmem]")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH = Path(sys.executable).with_name("langgraph")
STARTUP_TIMEOUT = 60.0  # importing both graphs (torch, transformers) on 2 busy cores
REQUEST_TIMEOUT = 15.0
RUN_TIMEOUT = 75.0  # one question through the local 135M model, started on demand
START_TIMEOUT = 30.0  # the optimizer's start node: load the target, metric and data
STOP_TIMEOUT = 10.0
NOT_MIRRORED = {".git", ".venv", ".langgraph_api", "storage", "langgraph.json", ".pytest_cache"}

LOOP_NODES = ["start", "baseline", "collect", "pairs", "train_lrf", "pick_node", "propose", "validate", "adapt",
              "check_stop", "final"]
LOOP_EDGES = {  # (source, target) -> conditional
    ("__start__", "start"): False,
    ("start", "baseline"): False,
    ("baseline", "collect"): False,
    ("collect", "pairs"): False,
    ("pairs", "train_lrf"): False,
    ("train_lrf", "pick_node"): False,
    ("pick_node", "propose"): False,
    ("propose", "validate"): False,
    ("validate", "adapt"): True,
    ("validate", "check_stop"): True,
    ("adapt", "check_stop"): False,
    ("check_stop", "pick_node"): True,
    ("check_stop", "final"): True,
    ("final", "__end__"): False,
}
CONTEXT_FIELDS = ["target", "metric", "train", "val", "test", "inputs", "labels", "store", "settings"]


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


def _log_lines(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()


def _log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(_log_lines(log)[-lines:])


def _first_traceback(log: Path, since: int = 0, lines: int = 30) -> str:
    """The first traceback the server logged after line ``since`` (the root cause of a
    failed run), else the log's tail."""
    text = _log_lines(log)
    starts = [i for i, line in enumerate(text) if i >= since and line.startswith("Traceback (most recent call last)")]
    if not starts:
        return _log_tail(log, lines)
    return "\n".join(text[max(starts[0] - 1, 0):starts[0] + lines])


class Studio:
    """A running ``langgraph dev`` server and what the test needs to talk to it."""

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


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """``langgraph dev`` on a free loopback port, serving the repo's graphs from a mirror folder."""
    root = tmp_path_factory.mktemp("studio")
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
                pytest.fail(f"langgraph dev exited with code {proc.returncode} before serving; log:\n{_log_tail(log)}")
            if url is None:
                # langgraph dev silently moves to another port when N is taken: use the one it prints
                printed = re.search(r"API: (http://127\.0\.0\.1:\d+)", "\n".join(_log_lines(log)))
                url = printed.group(1) if printed else None
            try:
                if url is not None and httpx.get(f"{url}/ok", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not healthy after {STARTUP_TIMEOUT:.0f}s; log:\n{_log_tail(log)}")
            time.sleep(0.25)
        server = Studio(url, graphs, log, root / "home")
        yield server
        server.http.close()
    finally:
        _stop(proc)


def test_assistants_search_lists_every_graph(studio):
    assert set(studio.assistants()) == set(studio.graphs)
    assert "optimizer" in studio.assistants()
    for graph_id, assistant in studio.assistants().items():
        assert assistant["name"] == graph_id
    missing = set(json.loads((REPO / "langgraph.json").read_text())["graphs"]) - set(studio.graphs)
    if missing:
        pytest.skip(f"not served yet (file missing): {sorted(missing)}")


def test_optimizer_graph_draws_every_node_and_router(studio):
    response = studio.http.get(f"/assistants/{studio.assistant_id('optimizer')}/graph")
    response.raise_for_status()
    drawing = response.json()
    nodes = {n["id"] for n in drawing["nodes"]}
    assert nodes == {"__start__", "__end__", *LOOP_NODES}
    edges = {(e["source"], e["target"]): bool(e.get("conditional")) for e in drawing["edges"]}
    assert edges == LOOP_EDGES
    # a router without a Literal hint / path_map would be drawn as a conditional edge to END
    assert not [e for e in drawing["edges"] if e["target"] == "__end__" and e.get("conditional")]


def test_optimizer_context_is_editable_config(studio):
    assistant_id = studio.assistant_id("optimizer")
    response = studio.http.get(f"/assistants/{assistant_id}/schemas")
    response.raise_for_status()
    schemas = response.json()
    context = schemas["context_schema"]
    assert context is not None and context["title"] == "LoopContext"
    props = context["properties"]
    for name in CONTEXT_FIELDS:
        assert name in props, f"LoopContext.{name} missing from the context schema Studio edits"
    for name in ("target", "metric", "train"):  # the library's loop names no example
        assert props[name].get("default") is None, props[name]
    assert props["settings"]["type"] == "object"
    # the loop preset for the offline example pre-fills them with files that exist
    preset = studio.http.get(f"/assistants/{studio.assistant_id('optimize_offline_qa')}/schemas").json()
    for name in ("target", "metric", "train"):
        default = preset["context_schema"]["properties"][name]["default"]
        assert (REPO / default.split(":")[0]).is_file(), default
    # the loop's state is what Studio shows between steps
    state_fields = set(schemas["state_schema"]["properties"])
    assert {"job_id", "iteration", "current_val", "history", "stop_reason"} <= state_fields

    # Studio saves an edited configuration as an assistant version. Round-trip one on a new
    # assistant so the system assistant keeps the defaults for the run below.
    created = studio.http.post("/assistants", json={"graph_id": "optimizer", "name": "edited", "context": {}})
    created.raise_for_status()
    edited_id = created.json()["assistant_id"]
    edited = {"target": "my_agent.py:builder", "metric": "my_agent.py:metric", "train": "data/train.jsonl",
              "settings": {"budget": {"max_iterations": 2}}}
    response = studio.http.patch(f"/assistants/{edited_id}", json={"context": edited})
    response.raise_for_status()
    assert response.json()["context"] == edited
    assert response.json()["version"] == 2
    assert studio.http.get(f"/assistants/{edited_id}").json()["context"] == edited
    assert studio.http.get(f"/assistants/{assistant_id}").json()["context"] == {}


def _one_question() -> dict:
    data = REPO / "examples" / "offline_qa" / "data"
    for split in ("val", "test", "train"):
        path = data / f"{split}.jsonl"
        if path.is_file():
            with path.open() as f:
                return json.loads(f.readline())
    pytest.skip(f"no offline_qa data under {data}")


def test_offline_qa_runs_one_question(studio):
    if "offline_qa" not in studio.graphs:
        pytest.skip("examples/offline_qa/agent.py does not exist yet")
    assistant_id = studio.assistant_id("offline_qa")
    schemas = studio.http.get(f"/assistants/{assistant_id}/schemas").json()
    inputs = set((schemas.get("input_schema") or {}).get("properties", {}))
    assert "question" in inputs, f"offline_qa input schema has no question field: {sorted(inputs)}"
    payload = {"question": _one_question()["question"]}  # never the gold answer

    mark = len(_log_lines(studio.log))
    thread = studio.http.post("/threads", json={})
    thread.raise_for_status()
    thread_id = thread.json()["thread_id"]
    response = studio.http.post(f"/threads/{thread_id}/runs/wait",
                                json={"assistant_id": assistant_id, "input": payload}, timeout=RUN_TIMEOUT)
    response.raise_for_status()
    final = response.json()
    assert "__error__" not in final, (f"run failed: {final['__error__']}\n"
                                      f"server log:\n{_first_traceback(studio.log, mark)}")
    assert isinstance(final.get("answer"), str) and final["answer"].strip(), final
    assert final["question"] == payload["question"]

    # the run is kept on the thread, as Studio's thread view shows it
    state = studio.http.get(f"/threads/{thread_id}/state").json()
    assert state["values"]["answer"] == final["answer"]


def _context_default(studio: Studio, field: str):
    schemas = studio.http.get(f"/assistants/{studio.assistant_id('optimize_offline_qa')}/schemas").json()
    return schemas["context_schema"]["properties"][field]["default"]


def _sse_events(response, deadline: float, log: Path):
    """``(event, data)`` pairs of a server-sent event stream, until ``deadline``."""
    event, data = None, []
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            pytest.fail(f"no stream event within the time limit; server log:\n{_log_tail(log)}")
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif not line and event is not None:
            yield event, json.loads("\n".join(data)) if data else None
            event, data = None, []


def test_optimizer_run_opens_a_job_with_the_default_config(studio):
    """What submitting the optimizer in Studio does with the default configuration: the
    ``start`` node resolves the target, metric and data and opens a job in the store.
    The rest of the loop (many agent runs) is too slow for this test; the run is cancelled."""
    mark = len(_log_lines(studio.log))
    thread_id = studio.http.post("/threads", json={}).json()["thread_id"]
    body = {"assistant_id": studio.assistant_id("optimize_offline_qa"), "input": {}, "stream_mode": ["updates"],
            "context": {"settings": {"budget": {"max_iterations": 1}}}, "on_disconnect": "cancel"}
    deadline = time.monotonic() + START_TIMEOUT
    run_id, first = None, None
    with studio.http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body, timeout=START_TIMEOUT) as response:
        response.raise_for_status()
        for event, data in _sse_events(response, deadline, studio.log):
            if event == "metadata":
                run_id = data["run_id"]
            elif event in ("updates", "error"):
                first = (event, data)
                break
    if run_id is not None:
        studio.http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", params={"action": "interrupt"})
    assert first is not None, "the run ended without an update"
    assert first[0] == "updates", (f"the optimizer failed at start: {first[1]}\n"
                                   f"server log:\n{_first_traceback(studio.log, mark)}")
    job_id = first[1]["start"]["job_id"]
    assert isinstance(job_id, int)

    with Store(f"sqlite:///{studio.home / 'optimas.db'}") as store:
        job = store.get(m.Job, job_id)
        assert job is not None and job.kind == "optimize"
        assert job.target == _context_default(studio, "target")
        assert job.meta["config"]["budget"]["max_iterations"] == 1

"""Publishing a job's best config as a LangGraph Server assistant.

The jobs are written straight into a store as the loop writes them (configs and a final
event): an optimize run is far too slow for a test and publishing reads nothing else.
The server is a real ``langgraph dev`` (``tests/langgraph_server.py``) serving the repo's
graphs; the published knobs are ones the offline QA agent uses without the LLM
(``query_mode="question"`` skips the rewrite call, ``top_k``/``hops`` shape retrieval), and
the run stops before the ``answer`` node, so no model is loaded.
"""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from optimas_lg import publish
from optimas_lg.cli import app
from optimas_lg.errors import PublishError, ServerError, StoreError
from optimas_lg.loop.records import Change, Final
from optimas_lg.store import Store

QUESTION = "What does the company that Zantal Gilla works at make?"
GRAPH = "offline_qa"


def _initial() -> dict:
    from examples.offline_qa.agent import AgentConfig

    return dataclasses.asdict(AgentConfig())


def _job(store: Store, best: dict, status: str = "done", kind: str = "optimize") -> int:
    """A job as the loop leaves it: initial and best config versions, a final event if finished."""
    job = store.create_job(kind, target="examples/offline_qa/agent.py:builder")
    initial = store.add_config(_initial(), note="initial")
    best_id = store.add_config({**_initial(), **best}, parent_id=initial, note="iteration 1: " + ", ".join(best))
    if status == "done":
        store.add_event(job, Final.kind, Final(initial, best_id, 0.25, 0.5, 0.2, 0.45, "budget exhausted").to_json())
        store.finish_job(job)
    elif status != "running":
        store.finish_job(job, status)
    return job


# -- without a server: the job is checked first ------------------------------------------
def test_no_such_job(store):
    with pytest.raises(StoreError, match="no job 42 in store"):
        publish(42, server="http://127.0.0.1:9", graph_id=GRAPH, store=store)


def test_only_an_optimize_job_is_published(store):
    job = _job(store, {"top_k": 3}, kind="run")
    with pytest.raises(PublishError, match=f"job {job} .* is a 'run' job, not an optimize job"):
        publish(job, server="http://127.0.0.1:9", graph_id=GRAPH, store=store)


@pytest.mark.parametrize("status", ["running", "failed", "interrupted"])
def test_an_unfinished_job_is_refused(store, status):
    job = _job(store, {"top_k": 3}, status=status)
    with pytest.raises(PublishError, match=f"is '{status}' with no final result.*--resume {job}"):
        publish(job, server="http://127.0.0.1:9", graph_id=GRAPH, store=store)


def test_server_down_is_one_line_naming_the_url(store):
    job = _job(store, {"top_k": 3})
    result = CliRunner().invoke(app, ["publish", str(job), "--server", "http://127.0.0.1:9", "--graph", GRAPH,
                                      "--store", store.url])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot reach LangGraph Server at http://127.0.0.1:9" in lines[0], result.output


# -- against langgraph dev -----------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("langgraph_api", reason="needs the dev extra: langgraph-cli[inmem]")
    from tests.langgraph_server import langgraph_dev

    with langgraph_dev(tmp_path_factory.mktemp("publish")) as running:
        if GRAPH not in running.graphs:
            pytest.skip(f"{GRAPH} is not in langgraph.json")
        yield running


@pytest.fixture()
def client(server):
    from langgraph_sdk import get_sync_client

    with get_sync_client(url=server.url, api_key=None) as c:
        yield c


def _stops_before_answer(client, assistant_id: str) -> dict:
    """The state of a run of the assistant on QUESTION, interrupted before the LLM answers."""
    thread = client.threads.create()
    client.runs.wait(thread["thread_id"], assistant_id, input={"question": QUESTION}, interrupt_before=["answer"])
    state = client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["answer"], state
    return state["values"]


@pytest.mark.slow
def test_publish_then_a_run_uses_the_optimized_knobs(server, client, store):
    from examples.offline_qa.agent import knowledge_base

    first = _job(store, {"query_mode": "question", "top_k": 2, "hops": 2})
    done = publish(first, server=server.url, graph_id=GRAPH, assistant="qa-tuned", store=store)
    assert done.created and not done.dry_run and done.version == 1
    assert done.changes == {"query_mode": Change("rewrite", "question"), "top_k": Change(1, 2), "hops": Change(1, 2)}

    saved = client.assistants.get(done.assistant_id)
    assert saved["graph_id"] == GRAPH and saved["name"] == "qa-tuned" and saved["version"] == 1
    assert saved["context"] == {**_initial(), "query_mode": "question", "top_k": 2, "hops": 2}
    meta = saved["metadata"]
    assert meta["optimas_lg_job_id"] == first and meta["optimas_lg_store_id"] == store.identity
    assert meta["optimas_lg_store_url"] == store.display_url
    assert (meta["optimas_lg_val_before"], meta["optimas_lg_val_after"]) == (0.25, 0.5)
    assert (meta["optimas_lg_test_before"], meta["optimas_lg_test_after"]) == (0.2, 0.45)

    values = _stops_before_answer(client, done.assistant_id)
    assert values["query"] == QUESTION  # query_mode "question": the rewrite LLM call was skipped
    assert values["facts"] == knowledge_base().multi_hop(QUESTION, 2, 2)
    assert len(values["facts"]) > len(knowledge_base().multi_hop(QUESTION, 1, 1))  # not the defaults

    # a later job: the dry run shows the diff against the live assistant and changes nothing
    second = _job(store, {"query_mode": "question", "top_k": 3, "hops": 2})
    args = ["publish", str(second), "--server", server.url, "--graph", GRAPH, "--assistant", "qa-tuned",
            "--store", store.url]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would update assistant 'qa-tuned' of graph '{GRAPH}'" in dry.output
    assert "top_k: 2 → 3" in dry.output and "hops:" not in dry.output and "nothing was changed" in dry.output
    after_dry = client.assistants.get(done.assistant_id)
    assert after_dry["version"] == 1 and after_dry["context"] == saved["context"]
    assert after_dry["metadata"]["optimas_lg_job_id"] == first

    # publishing it makes a new version of the same assistant, which runs use
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "updated assistant 'qa-tuned'" in result.output and "version 2" in result.output
    assert "val 0.250 → 0.500 (+0.250), test 0.200 → 0.450 (+0.250)" in result.output
    found = client.assistants.search(graph_id=GRAPH, name="qa-tuned")
    assert [a["assistant_id"] for a in found] == [done.assistant_id]
    assert [v["version"] for v in client.assistants.get_versions(done.assistant_id)] == [2, 1]
    latest = client.assistants.get(done.assistant_id)
    assert latest["context"]["top_k"] == 3 and latest["metadata"]["optimas_lg_job_id"] == second
    assert _stops_before_answer(client, done.assistant_id)["facts"] == knowledge_base().multi_hop(QUESTION, 3, 2)


@pytest.mark.slow
def test_dry_run_of_a_new_assistant_creates_nothing(server, client, store):
    job = _job(store, {"top_k": 4})
    dry = publish(job, server=server.url, graph_id=GRAPH, dry_run=True, store=store)
    assert dry.created and dry.dry_run and dry.assistant_id is None and dry.version is None
    assert dry.name == f"{GRAPH}-optimized" and dry.changes == {"top_k": Change(1, 4)}
    assert not [a for a in client.assistants.search(graph_id=GRAPH, limit=100) if a["name"] == dry.name]


@pytest.mark.slow
def test_unknown_graph_and_mismatched_knobs_are_one_line_errors(server, store):
    job = _job(store, {"top_k": 3})
    with pytest.raises(ServerError, match=f"{server.url} refused .* graph 'no_such_graph'.*404.*offline_qa"):
        publish(job, server=server.url, graph_id="no_such_graph", store=store)
    with pytest.raises(PublishError, match=r"graph 'optimizer' .* has no context field\(s\) \['answer_adapter'"):
        publish(job, server=server.url, graph_id="optimizer", store=store)

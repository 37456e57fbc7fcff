"""Running, replaying and optimizing a graph on a LangGraph Server (``--server``/``server=``).

The server is a real ``langgraph dev`` (``tests/langgraph_server.py``) serving
``tests/graphs/served.py`` (a ``Send`` fan-out, a join, a conditional router; no model),
so a job run in this process and the same job run through the server must record the
same node calls and reach the same decisions; and ``tests/graphs/orders.py`` (a
``MessagesState`` agent with an async LLM node and a subgraph), whose node calls,
subgraph calls and LLM calls must record the same too. One server serves the whole module.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from typer.testing import CliRunner

from optimas_lg import Server, optimize
from optimas_lg.cli import app
from optimas_lg.errors import ServerError
from optimas_lg.execution.meter import TokenMeter
from optimas_lg.execution.replay import replay, run_node
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph import serde
from optimas_lg.graph.system import System
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.report import load_history
from optimas_lg.store import Store
from optimas_lg.store import models as m
from tests.graphs import orders, served
from tests.langgraph_server import langgraph_dev

GRAPH = "served"
DOWN = "http://127.0.0.1:9"  # nothing listens on the discard port
SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 2, "max_tokens": 64, "progress": False},
            "pairs_plan_accuracy": None,
            "pairs": {"samples": 3, "calls_per_node": 8}, "concurrency": 4}


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    with langgraph_dev(tmp_path_factory.mktemp("langgraph-dev")) as server:
        yield server


def _stores(tmp_path) -> tuple[Store, Store]:
    return Store(f"sqlite:///{tmp_path / 'local.db'}"), Store(f"sqlite:///{tmp_path / 'server.db'}")


def _no_ids(value: Any) -> str:
    """``value`` as JSON without the ids of LangChain messages, which are new in every run."""
    def strip(v: Any) -> Any:
        if isinstance(v, list):
            return [strip(x) for x in v]
        if not isinstance(v, dict):
            return v
        if v.get("lc") == 1 and isinstance(v.get("kwargs"), dict):
            v = {**v, "kwargs": {k: x for k, x in v["kwargs"].items() if k != "id"}}
        return {k: strip(x) for k, x in v.items()}
    return json.dumps(strip(value), sort_keys=True)


def _path(namespace: str) -> str:
    """A namespace's node names ("lookup:<task id>" -> "lookup"): task ids differ between runs."""
    return "|".join(part.partition(":")[0] for part in namespace.split("|")) if namespace else ""


def _calls(store: Store, purpose: str) -> Counter:
    """Every recorded node call and state snapshot of runs with ``purpose``, keyed by example,
    as a multiset (call ids, timings, message ids and the reads the server cannot report left out).

    A rollout's steps are left out too: its server thread takes one more superstep to set
    up (the recorded state, then its triggers cleared) than the local fork's seed node."""
    with store.session() as session:
        rows = session.query(m.NodeCall, m.Run).join(m.Run, m.NodeCall.run_id == m.Run.id).filter(
            m.Run.purpose == purpose, m.NodeCall.kind != "route").all()
        parents = {call.id: call.node for call, _ in rows}
        return Counter((run.example_key, call.kind, None if purpose == "rollout" else call.step, call.node,
                        _path(call.namespace), parents.get(call.parent_call_id), _no_ids(call.inputs),
                        _no_ids(call.output), json.dumps(call.knobs, sort_keys=True), call.error is None)
                       for call, run in rows)


def _llm_calls(store: Store) -> Counter:
    """Every recorded LLM call: its run's example, the node that made it, model, messages,
    response and tokens (ids, timings and the invocation parameters left out)."""
    with store.session() as session:
        rows = session.query(m.LLMCall, m.Run, m.NodeCall).join(m.Run, m.LLMCall.run_id == m.Run.id).join(
            m.NodeCall, m.LLMCall.node_call_id == m.NodeCall.id).all()
        return Counter((run.example_key, node.node, llm.model, _no_ids(llm.messages), _no_ids(llm.response),
                        llm.prompt_tokens, llm.completion_tokens, llm.error) for llm, run, node in rows)


@pytest.mark.slow
def test_runs_and_replays_record_the_same_node_calls(dev, tmp_path):
    system = System.load(served.builder())
    examples = served.examples()[:4]
    server = Server(dev.url, GRAPH)
    results = {}
    for store, on in zip(_stores(tmp_path), [None, server]):
        summary = run_examples(system, examples, served.metric, {"n_facts": 2, "pick": "first"}, store,
                               progress=False, server=on)
        assert summary.n_failed == 0
        run = summary.results[0].run_id
        look = sorted((c for c in _node_calls(store, run) if c.node == "look" and c.kind == "node"),
                      key=lambda c: json.dumps(c.inputs, sort_keys=True))  # Send tasks start in any order
        assert len(look) == 2  # the fan-out
        # replay the second Send task with other wording: the rest of the graph goes on from it
        rollouts = replay(system, look[1], examples[0], served.metric, knobs={"wording": "city", "pick": "last"},
                          rollouts=2, store=store, server=on)
        results[on] = (summary.mean, [(r.final_output["answer"], r.score, r.error) for r in rollouts])
    local, remote = _stores(tmp_path)
    assert _calls(remote, "eval") == _calls(local, "eval") and _calls(local, "eval")
    assert _calls(remote, "rollout") == _calls(local, "rollout") and _calls(local, "rollout")
    assert results[server] == results[None] == (0.5, [("bergen", 1.0, None)] * 2)


@pytest.mark.slow
def test_a_messages_state_agent_records_the_same_node_and_llm_calls(dev, tmp_path):
    """Messages cross the server as its JSON and come back as messages; the lookup
    subgraph's nodes and the triage node's LLM calls (tokens included) record as locally."""
    system = System.load(orders.graph)
    examples = orders.examples(6)  # status questions, refunds and another request
    knobs = {"history_window": 3, "match_slack": 2}
    summaries = []
    for store, on in zip(_stores(tmp_path), [None, Server(dev.url, "orders")]):
        summary = run_examples(system, examples, orders.resolved, knobs, store, progress=False, server=on)
        assert summary.n_failed == 0
        refund = summary.results[3].run_id  # a refund request the LLM triage sends to the lookup
        (triage,) = [c for c in _node_calls(store, refund) if c.node == "triage" and c.kind == "node"]
        # replayed with keyword triage and refunds approved, the rest of the graph resolves it
        rollouts = replay(system, triage, examples[3], orders.resolved, rollouts=1, store=store, server=on,
                          knobs={**knobs, "intent_source": "keywords", "refund_policy": "approve"})
        meter = TokenMeter()  # a node run alone (a pair or proposal candidate) counts its LLM tokens
        alone = run_node(system, "triage", serde.from_json(triage.inputs), knobs, server=on,
                         callbacks=[meter.handler("replay")])
        summaries.append((summary.mean, summary.n_node_calls, summary.n_llm_calls, summary.prompt_tokens,
                          summary.completion_tokens, [(r.score, r.error) for r in rollouts], alone, meter.totals()))
    assert summaries[1] == summaries[0] and summaries[0][2] == 6 and summaries[0][3] > 0
    assert summaries[0][0] < 1.0 and summaries[0][5] == [(1.0, None)]
    assert summaries[0][6:] == ({"intent": "status"}, {"replay": 8})
    local, remote = _stores(tmp_path)
    assert _calls(remote, "rollout") == _calls(local, "rollout") and _calls(local, "rollout")
    calls = _calls(local, "eval")
    assert {(c[3], c[4], c[5]) for c in calls} >= {("lookup", "", None), ("fetch", "lookup", "lookup"),
                                                  ("match", "lookup", "lookup"), ("triage", "", None)}
    assert _calls(remote, "eval") == calls
    assert _llm_calls(remote) == _llm_calls(local) and sum(_llm_calls(local).values()) == 6


def _node_calls(store: Store, run_id: str) -> list[m.NodeCall]:
    with store.session() as session:
        calls = session.query(m.NodeCall).filter(m.NodeCall.run_id == run_id).all()
    return sorted(calls, key=lambda c: (c.step, c.started_at))


@pytest.mark.slow
def test_optimize_on_the_server_reaches_the_same_decisions(dev, tmp_path):
    examples = served.examples()
    outcomes = []
    for store, on in zip(_stores(tmp_path), [None, Server(dev.url, GRAPH)]):
        result = optimize(served.builder(), examples[:8], served.metric, valset=examples[8:], store=store,
                          settings=OptimizeConfig.from_dict(SETTINGS), max_iterations=3, patience=None,
                          server=on, progress=False)
        decisions = [d.record.to_json() for d in load_history(store, result.job_id).decisions]
        pairs = store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id)
        outcomes.append((result.val_before, result.val_after, result.best_knobs, decisions, pairs))
        assert store.get(m.Job, result.job_id).status == "done"
    assert outcomes[1] == outcomes[0]
    assert outcomes[0][2]["n_facts"] == 2 and outcomes[0][1] == 1.0  # the job found the better config
    local, remote = _stores(tmp_path)
    for purpose in ("collect", "eval", "rollout"):
        assert _calls(remote, purpose) == _calls(local, purpose), purpose


@pytest.mark.slow
def test_a_node_failing_on_the_server_is_a_failed_run(dev, store):
    examples = [served.Example("nobody-0", {"person": "nobody"}, {"answer": "x"}), *served.examples()[:1]]
    summary = run_examples(System.load(served.builder()), examples, served.metric, None, store, progress=False,
                           server=Server(dev.url, GRAPH))
    failed, ok = summary.results
    assert ok.error is None and ok.score == 0.5
    assert failed.score is None and "KeyError" in failed.error and dev.url in failed.error
    plan = [c for c in _node_calls(store, failed.run_id) if c.node == "plan"]
    assert plan and plan[0].error and "KeyError" in plan[0].error


@pytest.mark.slow
def test_an_unknown_graph_id_names_what_the_server_serves(dev, store):
    with pytest.raises(ServerError, match=f"LangGraph Server at {dev.url} refused to find graph 'nope': "
                                          r"404 Graph 'nope' not found. Expected one of: \[.*'served'"):
        run_examples(System.load(served.builder()), served.examples()[:1], served.metric, None, store,
                     progress=False, server=Server(dev.url, "nope"))


def test_a_server_that_is_down_fails_the_job_with_one_line(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n"
                            for e in served.examples()[:2]))
    url = f"sqlite:///{tmp_path / 'optimas.db'}"
    result = CliRunner().invoke(app, ["run", "tests/graphs/served.py:builder", "--data", str(data), "--metric",
                                      "tests/graphs/served.py:metric", "--labels", "answer", "--server", DOWN,
                                      "--graph", GRAPH, "--store", url])
    assert result.exit_code == 1
    assert f"error: cannot reach LangGraph Server at {DOWN} to find graph 'served'" in result.output
    with Store(url) as store, store.session() as session:
        (job,) = session.query(m.Job).all()
        assert job.status == "failed" and store.count(m.Run) == 0


def test_server_and_graph_go_together(tmp_path):
    result = CliRunner().invoke(app, ["run", "tests/graphs/served.py:builder", "--data", str(tmp_path / "x.jsonl"),
                                      "--metric", "tests/graphs/served.py:metric", "--server", DOWN])
    assert result.exit_code == 1 and "give --server URL and --graph GRAPH_ID together" in result.output

"""Running datasets: order and ids, knobs (context and configurable), failures, the CLI."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from optimas_lg.cli import app
from optimas_lg.data import Example
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph.system import System
from optimas_lg.store import Store, models
from tests.graphs import shapes

QUESTIONS = {"paris": "paris is in france", "rome": "rome is in italy", "berlin": "berlin is in germany"}


def examples():
    return [Example(city, {"question": f"where is {city}"}, {"answer": ans}) for city, ans in QUESTIONS.items()]


def test_results_keep_example_order_and_ids(store):
    def slow_first(example, output):  # later examples finish first
        time.sleep(0.05 if example.key == "paris" else 0.0)
        return shapes.exact_match(example, output)

    summary = run_examples(System.load(shapes.sequential()), examples(), slow_first, {}, store,
                           concurrency=3, progress=False)
    assert [r.example_key for r in summary.results] == ["paris", "rome", "berlin"]
    assert [r.output["answer"] for r in summary.results] == list(QUESTIONS.values())
    assert summary.mean == 1.0 and summary.n_failed == 0 and summary.n_node_calls == 9
    runs = {r.id: r for r in store.select(models.Run)}
    assert [runs[r.run_id].example_key for r in summary.results] == ["paris", "rome", "berlin"]


def test_knobs_reach_context_and_configurable(store):
    summary = run_examples(System.load(shapes.sequential()), examples(), shapes.exact_match, {"style": "upper"},
                           store, progress=False)
    assert summary.mean == 0.0 and summary.results[0].output["answer"] == "PARIS IS IN FRANCE"
    legacy = System.load(shapes.legacy())
    summary = run_examples(legacy, [Example("a", {"question": "hi"})], lambda e, o: 1.0, {"suffix": "?"}, store,
                           progress=False)
    assert summary.results[0].output["answer"] == "HI?"


def test_failing_node_and_metric_are_failed_runs_not_scores(store):
    exs = [Example(str(n), {"n": n}) for n in (1, 13, 2)]

    def metric(example, output):
        if example.key == "2":
            raise ZeroDivisionError("metric bug")
        return {"score": 0.5, "feedback": "half"}

    summary = run_examples(System.load(shapes.failing()), exs, metric, {}, store, progress=False)
    ok, node_failed, metric_failed = summary.results
    assert (ok.score, ok.feedback, ok.error) == (0.5, "half", None)
    assert node_failed.score is None and "unlucky number 13" in node_failed.error
    assert metric_failed.score is None and "ZeroDivisionError: metric bug" in metric_failed.error
    assert summary.n_failed == 2 and summary.mean == 0.5
    runs = {r.example_key: r for r in store.select(models.Run)}
    assert runs["13"].status == "failed" and "Traceback" in runs["13"].error and runs["1"].status == "done"
    (call,) = store.select(models.NodeCall, models.NodeCall.run_id == node_failed.run_id)
    assert "RuntimeError: unlucky number 13" in call.error


def test_cli_run(home, tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps({"id": k, "question": f"where is {k}", "answer": v, "extra": 1})
                              for k, v in QUESTIONS.items()))
    url = f"sqlite:///{tmp_path / 'run.db'}"
    args = ["run", "tests/graphs/shapes.py:sequential", "--data", str(data), "--metric",
            "tests/graphs/shapes.py:exact_match", "--inputs", "question", "--labels", "answer", "--store", url]
    result = CliRunner().invoke(app, [*args, "--config", '{"top_k": 1}', "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert "mean score 1.0000 over 3 runs; 0 failed" in result.output
    with Store(url) as s:
        (config,) = s.select(models.ConfigVersion)
        assert config.values == {"rewrite_prompt": "search:", "top_k": 1, "style": "plain"}
        assert {r.config_id for r in s.select(models.Run)} == {config.id}
        assert s.select(models.Run)[0].inputs == {"question": "where is " + s.select(models.Run)[0].example_key}
    result = CliRunner().invoke(app, [*args, "--config", '{"top_k": 10}'])
    assert result.exit_code == 1 and "top_k" in result.output
    result = CliRunner().invoke(app, [*args, "--json", "--config", '{"style": "upper"}'])
    assert json.loads(result.output)["mean"] == 0.0


def test_cli_run_says_the_mean_as_optimize_counts_it_and_fails_when_nothing_scored(home, tmp_path):
    data = tmp_path / "n.jsonl"
    args = ["run", "tests/graphs/shapes.py:failing", "--data", str(data), "--metric",
            "tests/graphs/shapes.py:finished", "--inputs", "n", "--store", f"sqlite:///{tmp_path / 'run.db'}"]
    data.write_text("\n".join(json.dumps({"id": str(n), "n": n}) for n in (1, 13, 2, 3)))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mean score 1.0000 (0.7500 with the failed as 0, as optimize counts them) over 3 runs; 1 failed" in \
        result.output
    data.write_text(json.dumps({"id": "13", "n": 13}))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "n/a (every run failed)" in result.output
    with Store(f"sqlite:///{tmp_path / 'run.db'}") as store:
        assert [(j.status, j.meta.get("error")) for j in store.select(models.Job)] == [("done", None),
                                                                                 ("failed", "every run failed")]


def _review_graph():
    from langgraph.graph import START, StateGraph
    from langgraph.types import interrupt
    from typing_extensions import TypedDict

    class Draft(TypedDict, total=False):
        q: str
        approved: bool

    def review(state: Draft) -> dict:
        return {"approved": bool(interrupt({"draft": state["q"]}))}

    builder = StateGraph(Draft)
    builder.add_node("review", review)
    builder.add_edge(START, "review")
    return builder


def test_a_run_stopped_by_interrupt_is_a_failed_run_never_a_score(store):
    """A human-in-the-loop pause returns ``__interrupt__`` instead of raising; scored, it
    looked like a finished run."""
    from langgraph.checkpoint.memory import InMemorySaver

    from optimas_lg.errors import TargetError

    for graph in (_review_graph(), _review_graph().compile(checkpointer=InMemorySaver())):
        (result,) = run_examples(System.load(graph), [Example("e", {"q": "hi"}, {})], lambda e, o: 1.0, None, store,
                                 progress=False).results
        assert result.score is None and "RunInterrupted: the run stopped at interrupt() ({'draft': 'hi'})" in \
            result.error
    with pytest.raises(TargetError, match=r"compiled with breakpoints \(interrupt_before=\['review'\]"):
        System.load(_review_graph().compile(interrupt_before=["review"]))


def test_the_per_node_profile_counts_node_calls_only(store):
    """A Send step also records the state it started from (``__state__``), and routes are
    recorded beside nodes; the report's per-node table listed them as nodes."""
    from optimas_lg.store import queries

    job_id, config_id = store.create_job("run"), store.add_config({})
    run_examples(System.load(shapes.map_reduce()), [Example("e", {"topic": "t"}, {})], lambda e, o: 1.0, None,
                 store, job_id=job_id, config_id=config_id, purpose="eval", progress=False)
    assert store.select(models.NodeCall, models.NodeCall.kind == "state")  # what must not show as a node
    n_runs, latency, _ = queries.node_profile(store, job_id, config_id, "eval")
    assert n_runs == 1 and set(latency) == {"split", "work", "reduce"} and latency["work"][0] == 3


def _stalling(node):
    """fast -> stall, compiled with LangGraph's own step_timeout."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class S(TypedDict, total=False):
        q: str
        a: str

    builder = StateGraph(S)
    builder.add_node("fast", lambda s: {"a": "x"})
    builder.add_node("stall", node)
    builder.add_edge(START, "fast")
    builder.add_edge("fast", "stall")
    builder.add_edge("stall", END)
    graph = builder.compile()
    graph.step_timeout = 0.3
    return graph


def _sleep(state):
    time.sleep(1.0)
    return {"a": "late"}


async def _asleep(state):
    import asyncio

    await asyncio.sleep(5.0)
    return {"a": "late"}


def _own_timeout(state):
    raise TimeoutError("the socket timed out")


@pytest.mark.parametrize("node", [_sleep, _asleep], ids=["sync", "async"])
def test_a_step_past_the_graphs_step_timeout_is_a_failed_run_naming_the_node(store, node):
    from optimas_lg.errors import error_line

    system = System.load(_stalling(node))
    assert system.step_timeout == 0.3 and system.compile().step_timeout == 0.3  # kept from the compiled graph
    summary = run_examples(system, [Example("a", {"q": "hi"})], lambda e, o: 1.0, {}, store, progress=False)
    (result,) = summary.results
    assert result.score is None
    assert error_line(result.error).startswith("optimas_lg.errors.StepTimeout: a step of the run took longer than "
                                               "the graph's step_timeout of 0.3 s and was abandoned (in node 'stall')")


def test_a_timeout_a_node_raises_itself_stays_that_error(store):
    from optimas_lg.errors import error_line

    summary = run_examples(System.load(_stalling(_own_timeout)), [Example("a", {"q": "hi"})], lambda e, o: 1.0, {},
                           store, progress=False)
    assert error_line(summary.results[0].error) == "TimeoutError: the socket timed out (in node 'stall')"

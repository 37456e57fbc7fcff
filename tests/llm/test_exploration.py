"""LLM sampling overrides (``optimas_lg.llm.exploration``): they change the request a chat
model sends at call time, give every call its own deterministic seed, and reach node code
run by LangGraph (sync, async, parallel branches, and the replay helper)."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from optimas_lg import chat_model
from optimas_lg.errors import OptimasError
from optimas_lg.execution import replay
from optimas_lg.graph.system import System
from optimas_lg.llm.exploration import ExploringChatOpenAI, current_sampling, sampling
from tests.graphs import sampled


def _model(**kw) -> ExploringChatOpenAI:
    return ExploringChatOpenAI(model="m", api_key="k", base_url="http://fake.invalid/v1", temperature=0.0, **kw)


def test_override_sets_temperature_and_a_seed_per_call_at_call_time():
    model = _model()  # built before the override, like an agent's module-level model
    plain = model._get_request_payload("hi")
    assert plain["temperature"] == 0.0 and "seed" not in plain
    with sampling(0.7, 100) as active:
        first = model._get_request_payload("hi")
        second = model._get_request_payload("hi", temperature=0.0)  # a bound temperature is overridden too
        params = model._get_invocation_params()
    assert (first["temperature"], first["seed"]) == (0.7, 100)
    assert (second["temperature"], second["seed"]) == (0.7, 101)
    assert params["temperature"] == 0.7 and params["seed"] == 102  # what the next call would take
    assert active.calls == 2
    after = model._get_request_payload("hi")
    assert after["temperature"] == 0.0 and "seed" not in after


def test_seeds_are_deterministic_and_blocks_do_not_share_counters():
    model = _model()

    def seeds(seed: int) -> list[int]:
        with sampling(0.5, seed):
            return [model._get_request_payload("x")["seed"] for _ in range(3)]

    assert seeds(7) == seeds(7) == [7, 8, 9]
    with sampling(0.5, 1):
        with sampling(0.9, 50):
            inner = model._get_request_payload("x")
        outer = model._get_request_payload("x")
    assert (inner["temperature"], inner["seed"]) == (0.9, 50)
    assert (outer["temperature"], outer["seed"]) == (0.5, 1)


def test_hosted_and_responses_models_honour_the_override(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    hosted = chat_model("openai/gpt-4o-mini")
    assert isinstance(hosted, ExploringChatOpenAI)
    with sampling(1.0, 3):
        payload = hosted._get_request_payload("hi")
    assert (payload["model"], payload["temperature"], payload["seed"]) == ("gpt-4o-mini", 1.0, 3)
    assert hosted.stream_usage  # a streamed call (a graph on a LangGraph Server) reports its tokens too
    responses = _model(use_responses_api=True)
    with sampling(0.6, 3):
        payload = responses._get_request_payload("hi")
    assert payload["temperature"] == 0.6 and "seed" not in payload and "input" in payload


def test_bad_temperature_is_refused():
    with pytest.raises(OptimasError, match="temperature"):
        with sampling(-1.0, 0):
            pass


class _FanState(TypedDict, total=False):
    seen: Annotated[list, operator.add]


def _seen(name: str):
    def node(state: _FanState) -> dict:
        active = current_sampling()
        return {"seen": [(name, None if active is None else (active.temperature, active.seed))]}
    return node


def _fan_graph():
    """``a`` then ``b`` and ``c`` in one superstep (LangGraph runs those on its executor)."""
    g = StateGraph(_FanState)
    for name in "abc":
        g.add_node(name, _seen(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge("b", END)
    g.add_edge("c", END)
    return g


def test_override_reaches_nodes_run_by_langgraph():
    graph = _fan_graph().compile()
    assert sorted(graph.invoke({})["seen"]) == [("a", None), ("b", None), ("c", None)]
    with sampling(0.8, 5):
        out = graph.invoke({})
    assert sorted(out["seen"]) == [("a", (0.8, 5)), ("b", (0.8, 5)), ("c", (0.8, 5))]

    async def run() -> dict:
        with sampling(0.3, 9):
            return await graph.ainvoke({})

    assert sorted(asyncio.run(run())["seen"]) == [("a", (0.3, 9)), ("b", (0.3, 9)), ("c", (0.3, 9))]


def test_override_reaches_a_node_replayed_alone_and_its_model_samples():
    system = System.load(sampled.builder)
    state = {"question": "question 1"}
    assert replay.run_node(system, "rewrite", state, {}) == {"query": "q0"}
    sampled.REQUESTS.clear()
    outputs = []
    for seed in (0, 1, 2, 3):
        with sampling(0.9, seed) as active:
            outputs.append(replay.run_node(system, "rewrite", state, {}))
        assert active.calls == 1
    assert outputs == [{"query": f"q{s}"} for s in (0, 1, 2, 3)]
    assert [(r["temperature"], r["seed"]) for r in sampled.REQUESTS] == [(0.9, s) for s in (0, 1, 2, 3)]


def _workspace(store, **pairs):
    from optimas_lg.loop.config import OptimizeConfig
    from optimas_lg.loop.workspace import Workspace
    from optimas_lg.lrf.collect import PairConfig

    config = OptimizeConfig(pairs=PairConfig(samples=3, **pairs), concurrency=4)
    job_id = store.create_job("pairs", "sampled", {})
    ws = Workspace.create(System.load(sampled.builder), sampled.metric, sampled.examples(), [], [], store, config,
                          job_id)
    knobs = ws.system.knob_values({})
    ws.run(ws.trainset, knobs, store.add_config(knobs, "sampled"), purpose="collect")
    return ws, knobs


def test_pairs_for_an_llm_node_come_from_sampling_and_rollouts_stay_greedy(store):
    ws, knobs = _workspace(store, llm_samples=0)
    none, stats = ws.collect_pairs(knobs, ws.config.pairs, "pairs", nodes=["rewrite"])
    assert none == [] and stats.candidates == {"rewrite": 8}  # the prompt alone gives one output per call

    ws, knobs = _workspace(store, llm_samples=2, temperature=0.7)
    sampled.REQUESTS.clear()
    pairs, stats = ws.collect_pairs(knobs, ws.config.pairs, "pairs", nodes=["rewrite"])
    rewrites = [r for r in sampled.REQUESTS if r["messages"][-1]["content"].startswith("Rewrite:")]
    answers = [r for r in sampled.REQUESTS if r["messages"][-1]["content"].startswith("Answer:")]
    sampled_rewrites = [r for r in rewrites if r["temperature"] == 0.7]
    assert len(sampled_rewrites) >= stats.llm_candidates["rewrite"] > 0
    assert len({r["seed"] for r in sampled_rewrites}) == len(sampled_rewrites)  # a seed per draw
    assert all(r["temperature"] == 0.0 and "seed" not in r for r in answers)  # the rollouts decode greedily
    assert len(answers) == stats.system_runs == stats.candidates["rewrite"]
    assert stats.pairs["rewrite"] == len(pairs) > 0
    assert all(p.chosen == {"query": "q2"} and p.chosen_score == 1.0 for p in pairs)

    again, _ = ws.collect_pairs(knobs, ws.config.pairs, "pairs", nodes=["rewrite"])
    assert [p.to_dict() for p in again] == [p.to_dict() for p in pairs]  # seeds derive from call ids, not timing

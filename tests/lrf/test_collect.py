"""Pair collection from rollouts: candidate sampling and the pairs it yields."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.errors import SettingsError
from optimas_lg.execution.replay import RecordedStep, recorded_step, rollout_from, run_node
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph.knobs import Choice, FloatRange, IntRange, KnobSpec, Prompt
from optimas_lg.graph.system import System
from optimas_lg.llm.exploration import current_sampling
from optimas_lg.lrf.collect import (
    PairConfig,
    RunAllowance,
    candidate_assignments,
    collect_node_pairs,
    planned_runs_per_call,
    room_first,
    sample_seed,
    sample_value,
)
from optimas_lg.store import models


def test_sampled_values_stay_in_their_space():
    rng = random.Random(0)
    ints = [sample_value(KnobSpec("k", IntRange(2, 10, node="n", step=2), 2), rng) for _ in range(200)]
    assert set(ints) <= {2, 4, 6, 8, 10} and len(set(ints)) > 2
    logs = [sample_value(KnobSpec("f", FloatRange(1e-3, 1.0, node="n", log=True), 0.1), rng) for _ in range(200)]
    assert all(1e-3 <= x <= 1.0 for x in logs) and sum(x < 0.03 for x in logs) > 50  # log-uniform mass
    assert sample_value(KnobSpec("p", Prompt(node="n"), "hi"), rng) == "hi"  # no space: stays put


def test_candidates_start_with_the_current_assignment_and_are_distinct():
    specs = [KnobSpec("c", Choice(["a", "b", "c"], node="n"), "a")]
    out = candidate_assignments(specs, {"c": "a"}, 5, random.Random(0))
    assert out[0] == {"c": "a"} and len(out) == 3 and len({o["c"] for o in out}) == 3


def test_planned_runs_per_call_counts_the_candidates_the_collection_draws():
    config = PairConfig(samples=4, llm_samples=2, rollouts=3)
    two = [KnobSpec("c", Choice(["a", "b"], node="n"), "a")]
    assert planned_runs_per_call(two, config, calls_llm=False, exact=False) == 2 * 3  # the space holds 2
    assert planned_runs_per_call(two, config, calls_llm=True, exact=False) == (2 + 2) * 3
    wide = [KnobSpec("k", IntRange(1, 10, node="n"), 1), KnobSpec("f", FloatRange(0.0, 1.0, node="n"), 0.5)]
    assert planned_runs_per_call(wide, config, calls_llm=False, exact=False) == 4 * 3
    prompt = [KnobSpec("p", Prompt(node="n"), "hi")]  # no space: the current value only, plus LLM draws
    assert planned_runs_per_call(prompt, config, calls_llm=True, exact=False) == (1 + 2) * 3
    assert planned_runs_per_call(prompt, config, calls_llm=True, exact=True) == 0
    steps = [KnobSpec("k", IntRange(2, 6, node="n", step=2), 2)]  # 2, 4, 6
    assert planned_runs_per_call(steps, PairConfig(samples=8, llm_samples=0), calls_llm=False, exact=False) == 3


def _call(i: int) -> SimpleNamespace:
    return SimpleNamespace(id=f"call{i}", run_id=f"run{i}", namespace="", step=1, inputs={"x": i}, reads=["x"])


def _recorded(n: int) -> tuple[list[SimpleNamespace], dict[str, Example], dict[str, str]]:
    """``n`` recorded calls (input x = i), their examples, and run id -> example key."""
    return ([_call(i) for i in range(n)], {f"e{i}": Example(f"e{i}", {"x": i}) for i in range(n)},
            {f"run{i}": f"e{i}" for i in range(n)})


def _alone(call: SimpleNamespace) -> RecordedStep:
    """A call that was the only task of its step."""
    return RecordedStep(call.inputs, call.inputs, False, [], 0)


def _score_y2(system, node, state, output, example, metric, knobs, rollouts, store, job_id, **step):
    """Rollouts that score 1 when the node wrote y == 2."""
    return [SimpleNamespace(score=float(output["y"] == 2), error=None)] * rollouts


def test_collect_node_pairs_scores_every_candidate_by_its_rollouts():
    knob = KnobSpec("k", IntRange(0, 3, node="n"), 0)
    system = SimpleNamespace(knobs={"k": knob})
    calls, examples, run_keys = _recorded(4)

    def run_node(system, node, state, knobs, **send):
        if knobs["k"] == 3:
            raise RuntimeError("k=3 breaks the node")
        return {"y": state["x"] + knobs["k"]}

    kwargs = dict(run_node=run_node, rollout_from=_score_y2, recorded_step=_alone)
    pairs, stats = collect_node_pairs(system, "n", calls, examples, run_keys, None, {"k": 0},
                                      PairConfig(samples=4, rollouts=2), **kwargs)
    again, _ = collect_node_pairs(system, "n", calls, examples, run_keys, None, {"k": 0},
                                  PairConfig(samples=4, rollouts=2), **kwargs)
    assert [p.to_dict() for p in pairs] == [p.to_dict() for p in again]  # deterministic under threads
    assert stats.failed_candidates["n"] == 4  # k=3 fails on every call and is counted
    assert stats.candidates["n"] == 12 and stats.system_runs == 24
    # x + k == 2 wins: inputs 0, 1, 2 each have one winner and two losers; input 3 cannot reach 2
    assert stats.pairs["n"] == 6
    assert all(p.chosen["y"] == 2 and p.chosen_score == 1.0 and p.rejected_score == 0.0 for p in pairs)


def test_identical_outputs_share_rollouts_and_a_last_node_costs_no_run():
    system = SimpleNamespace(knobs={"k": KnobSpec("k", IntRange(0, 3, node="n"), 0)})
    calls, examples, run_keys = _recorded(4)

    def run_node(system, node, state, knobs, **send):
        return {"y": min(knobs["k"], 1)}  # k = 1, 2 and 3 all write y = 1

    def rollout(system, node, state, output, example, metric, knobs, rollouts, store, job_id, **step):
        return [SimpleNamespace(score=float(output["y"]), error=None)] * rollouts

    def collect(ends_run=False, max_runs=None, **config):
        return collect_node_pairs(system, "n", calls, examples, run_keys, None, {"k": 0},
                                  PairConfig(samples=4, llm_samples=0, **config), run_node=run_node,
                                  rollout_from=rollout, recorded_step=_alone, max_runs=max_runs, ends_run=ends_run)

    pooled, apart = collect(share_rollouts=False)
    shared, together = collect()
    # the same one pair per call (y=1 over y=0), for half the runs
    assert [p.to_dict() for p in shared] == [p.to_dict() for p in pooled] and len(shared) == 4
    assert apart.system_runs == 16 and together.system_runs == 8
    assert apart.duplicates["n"] == together.duplicates["n"] == 8 and together.candidates["n"] == 8
    assert apart.ties["n"] == together.ties["n"] == 0

    exact, free = collect(ends_run=True, max_runs=0, exact_last=True)  # nothing runs after the node: no run
    assert len(exact) == 4 and free.system_runs == 0 and free.exact_candidates["n"] == 8
    none, skipped = collect(ends_run=True, max_runs=0)
    assert none == [] and skipped.skipped_calls["n"] == 4


def _fake_llm_node(system, node, state, knobs, **send):
    """A node whose only knob changes nothing; under ``sampling`` it draws from its seed."""
    active = current_sampling()
    return {"y": 0 if active is None else active.next_seed() % 3}


def _score_y1(system, node, state, output, example, metric, knobs, rollouts, store, job_id, **step):
    assert current_sampling() is None  # rollouts run greedy, outside the override
    return [SimpleNamespace(score=float(output["y"] == 1), error=None)] * rollouts


def test_llm_samples_give_candidates_to_a_node_with_no_knob_variety():
    system = SimpleNamespace(knobs={"p": KnobSpec("p", Prompt(node="n"), "hi")})
    calls, examples, run_keys = _recorded(6)
    kwargs = dict(run_node=_fake_llm_node, rollout_from=_score_y1, recorded_step=_alone)

    def collect(**config):
        return collect_node_pairs(system, "n", calls, examples, run_keys, None, {"p": "hi"},
                                  PairConfig(samples=4, **config), **kwargs)

    none, off = collect(llm_samples=0)
    assert none == [] and off.candidates["n"] == 6 and off.llm_candidates["n"] == 0  # one candidate per call

    pairs, stats = collect(llm_samples=2, temperature=0.5)
    again, _ = collect(llm_samples=2, temperature=0.5)
    assert [p.to_dict() for p in pairs] == [p.to_dict() for p in again]
    # distinct new outputs only: y=1 and y=2 beside the greedy y=0, at most two per call
    assert 0 < stats.llm_candidates["n"] <= 12 and stats.candidates["n"] == 6 + stats.llm_candidates["n"]
    assert stats.system_runs == stats.candidates["n"]
    assert stats.pairs["n"] > 0 and all(p.chosen == {"y": 1} for p in pairs)

    # A rerun records the same calls under new random ids, in another order: the calls
    # chosen and the samples drawn must not change.
    calls[:] = [SimpleNamespace(**{**vars(c), "id": f"uuid-{7 - i}"}) for i, c in enumerate(reversed(calls))]
    rerun, _ = collect(llm_samples=2, temperature=0.5, calls_per_node=4)
    calls[:] = [_call(i) for i in range(6)]
    first, _ = collect(llm_samples=2, temperature=0.5, calls_per_node=4)
    assert [p.to_dict() for p in rerun] == [p.to_dict() for p in first]
    other, _ = collect(llm_samples=2, temperature=0.5, seed=1)
    assert [p.to_dict() for p in other] != [p.to_dict() for p in pairs] or other == pairs == []


def test_room_first_serves_calls_between_the_lowest_and_highest_score_first():
    calls, examples, run_keys = _recorded(6)
    scores = {"run0": 1.0, "run1": 0.5, "run2": 0.0, "run3": None, "run4": 0.25, "run5": 1.0}
    assert [c.id for c in room_first(calls, scores)] == ["call1", "call4", "call0", "call2", "call3", "call5"]
    assert room_first(calls, {}) == calls
    system = SimpleNamespace(knobs={"k": KnobSpec("k", IntRange(0, 3, node="n"), 0)})

    def run_node(system, node, state, knobs, **send):
        return {"y": state["x"] + knobs["k"]}

    def rollout(system, node, state, output, example, metric, knobs, rollouts, store, job_id, **step):
        return [SimpleNamespace(score=float(output["y"]), error=None)] * rollouts

    def collect(**config):
        return collect_node_pairs(system, "n", calls, examples, run_keys, None, {"k": 0},
                                  PairConfig(samples=2, llm_samples=0, **config), run_node=run_node,
                                  rollout_from=rollout, recorded_step=_alone, max_runs=4, run_scores=scores)

    assert {p.example_key for p in collect(room_first=True)[0]} == {"e1", "e4"}  # 2 calls of 2 runs each
    assert {p.example_key for p in collect()[0]} != {"e1", "e4"}
    with pytest.raises(SettingsError, match="run_scores"):
        collect_node_pairs(system, "n", calls, examples, run_keys, None, {"k": 0}, PairConfig(room_first=True),
                           run_node=run_node, rollout_from=_score_y2, recorded_step=_alone)


def test_sample_seeds_are_stable_and_distinct():
    seeds = {sample_seed(0, "n", f"call{i}", j) for i in range(50) for j in range(4)}
    assert len(seeds) == 200 and all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(0, "n", "call1", 0) == sample_seed(0, "n", "call1", 0) != sample_seed(1, "n", "call1", 0)


def test_run_allowance_is_never_exceeded_and_deterministic():
    knob = KnobSpec("k", IntRange(0, 3, node="n"), 0)
    system = SimpleNamespace(knobs={"k": knob})
    calls, examples, run_keys = _recorded(10)

    def run_node(system, node, state, knobs, **send):
        return {"y": state["x"] + knobs["k"]}

    def collect(max_runs, concurrency=8):
        return collect_node_pairs(system, "n", calls, examples, run_keys, None, {"k": 0},
                                  PairConfig(samples=3, rollouts=2, concurrency=concurrency), run_node=run_node,
                                  rollout_from=_score_y2, recorded_step=_alone, max_runs=max_runs)

    _, full = collect(None)
    assert full.system_runs == 60 and full.skipped_calls["n"] == 0
    for limit in (0, 1, 7, 13, 59):
        pairs, stats = collect(limit)
        assert stats.system_runs <= limit and stats.system_runs > limit - 2  # whole candidates of 2 runs
        assert stats.skipped_calls["n"] == 10 - -(-stats.system_runs // 6)  # calls not even partly served
        for _ in range(3):  # the same calls and candidates whatever the thread timing
            again, same = collect(limit)
            assert [p.to_dict() for p in again] == [p.to_dict() for p in pairs] and same == stats
        serial, one = collect(limit, concurrency=1)
        assert [p.to_dict() for p in serial] == [p.to_dict() for p in pairs] and one == stats


def test_run_allowance_serves_calls_in_order_whatever_order_they_ask_in():
    allowance = RunAllowance(5)
    order: list[int] = []

    def ask(index: int) -> None:
        granted, skipped = allowance.grant(index, 3, 1)
        order.append((index, granted, skipped))
        allowance.release(index)

    allowance.release(2)  # a later call that left early must not let call 1 jump ahead of call 0
    late = threading.Thread(target=ask, args=(1,))
    late.start()
    late.join(timeout=0.2)
    assert late.is_alive() and order == []  # call 1 waits for call 0
    ask(0)
    late.join(timeout=5)
    assert order == [(0, 3, False), (1, 2, False)] and allowance.used == 5 and allowance.exhausted
    assert allowance.grant(3, 1, 1) == (0, True)


class Fan(TypedDict, total=False):
    x: int
    b: int
    c: int
    total: int


@dataclass
class FanConfig:
    shift: Annotated[int, IntRange(0, 3, node="b")] = 0


def _b(state: Fan, runtime: Runtime[FanConfig]) -> dict:
    return {"b": state["x"] + runtime.context.shift}


def _fan_out() -> StateGraph:
    """b and c run in one step, d joins them: b's candidates only score once d has run."""
    g = StateGraph(Fan, context_schema=FanConfig)
    g.add_node("b", _b)
    g.add_node("c", lambda state: {"c": 10})
    g.add_node("d", lambda state: {"total": state["b"] + state["c"]})
    g.add_edge(START, "b")
    g.add_edge(START, "c")
    g.add_edge(["b", "c"], "d")
    g.add_edge("d", END)
    return g


def test_a_fan_out_node_is_continued_with_its_siblings_outputs(store):
    system = System.load(_fan_out())
    examples = {f"e{x}": Example(f"e{x}", {"x": x}, {"total": 12}) for x in range(3)}

    def metric(example, output):
        return float(output.get("total") == example["total"])

    summary = run_examples(system, list(examples.values()), metric, None, store, progress=False)
    run_keys = {r.run_id: r.example_key for r in summary.results}
    nc = models.NodeCall
    calls = store.select(nc, nc.node == "b", nc.kind == "node")
    pairs, stats = collect_node_pairs(system, "b", calls, examples, run_keys, metric, {"shift": 0},
                                      PairConfig(samples=4, llm_samples=0), run_node=run_node,
                                      rollout_from=rollout_from,
                                      recorded_step=lambda call: recorded_step(store, call, system.types),
                                      store=store)
    # x + shift == 2 makes d's total 12: one winning shift per input against three losers
    assert stats.candidates["b"] == 12 and stats.failed_candidates["b"] == 0 and stats.pairs["b"] == 9
    assert all(p.chosen["b"] == 2 and p.chosen_score == 1.0 for p in pairs)
    rollouts = store.select(models.Run, models.Run.purpose == "rollout")
    assert len(rollouts) == stats.system_runs and {r.replay_of for r in rollouts} == set(run_keys)  # each names its run


class Turns(TypedDict, total=False):
    question: str
    call: str
    tool_result: str
    answer: str


@dataclass
class ToolChoice:
    tool: Annotated[str, Choice(["echo", "upper"], node="agent")] = "echo"


def _agent_loop() -> StateGraph:
    """agent -> tools -> agent: the first turn picks the tool (the knob), the second answers
    from its result (the knob does nothing there)."""

    def agent(state: Turns, runtime: Runtime[ToolChoice]) -> dict:
        if "tool_result" not in state:
            return {"call": runtime.context.tool}
        return {"answer": state["tool_result"]}

    def tools(state: Turns) -> dict:
        return {"tool_result": state["question"].upper() if state["call"] == "upper" else state["question"]}

    g = StateGraph(Turns, context_schema=ToolChoice)
    g.add_node("agent", agent)
    g.add_node("tools", tools)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", lambda s: END if "answer" in s else "tools", ["tools", END])
    g.add_edge("tools", "agent")
    return g


def test_every_turn_of_a_node_in_a_loop_is_a_call_to_learn_from(store):
    """The tool-choosing turn is where the knob matters; with only each run's last call (the
    answering turn) every candidate tied and no pair was made."""
    from optimas_lg.store import queries

    system = System.load(_agent_loop())
    examples = {f"e{i}": Example(f"e{i}", {"question": q}, {"answer": q.upper()}) for i, q in enumerate("abc")}

    def metric(example, output):
        return float(output.get("answer") == example["answer"])

    job_id = store.create_job("pairs")
    for _ in range(2):  # the second time as a step redone after a kill, or the adapt step, runs them again
        latest = run_examples(system, list(examples.values())[::-1], metric, None, store, job_id=job_id,
                              purpose="collect", progress=False, concurrency=1)
    calls, run_keys = queries.node_calls(store, job_id, "agent")
    assert len(calls) == 6 and len(set(run_keys.values())) == 3  # two turns a run, of each example's latest run
    # by example and step, not by start time (which concurrent runs change from one job to the next)
    assert [(run_keys[c.run_id], c.step) for c in calls] == sorted((run_keys[c.run_id], c.step) for c in calls)
    assert [run_keys[c.run_id] for c in calls][::2] == ["e0", "e1", "e2"]
    assert set(run_keys) == {r.run_id for r in latest.results}
    pairs, stats = collect_node_pairs(system, "agent", calls, examples, run_keys, metric, {"tool": "echo"},
                                      PairConfig(samples=2, llm_samples=0), run_node=run_node,
                                      rollout_from=rollout_from,
                                      recorded_step=lambda call: recorded_step(store, call, system.types),
                                      store=store)
    assert stats.pairs["agent"] == 3 and all(p.chosen["call"] == "upper" and p.chosen_score == 1.0 for p in pairs)
    assert stats.ties["agent"] == 0  # the answering turn's two candidates give one output: a duplicate, no tie

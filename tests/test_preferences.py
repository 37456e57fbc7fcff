"""Pair collection from rollouts: candidate sampling and the pairs it yields."""

from __future__ import annotations

import random
from types import SimpleNamespace

from optimas_lg.data import Example
from optimas_lg.knobs import Choice, FloatRange, IntRange, KnobSpec, Prompt
from optimas_lg.preferences import PairConfig, candidate_assignments, collect_node_pairs, sample_value


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


def _call(i: int) -> SimpleNamespace:
    return SimpleNamespace(id=f"call{i}", run_id=f"run{i}", inputs={"x": i}, reads=["x"])


def test_collect_node_pairs_scores_every_candidate_by_its_rollouts():
    knob = KnobSpec("k", IntRange(0, 3, node="n"), 0)
    system = SimpleNamespace(knobs={"k": knob})
    calls = [_call(i) for i in range(4)]
    examples = {f"e{i}": Example(f"e{i}", {"x": i}) for i in range(4)}
    run_keys = {f"run{i}": f"e{i}" for i in range(4)}

    def run_node(system, node, state, knobs):
        if knobs["k"] == 3:
            raise RuntimeError("k=3 breaks the node")
        return {"y": state["x"] + knobs["k"]}

    def rollout_from(system, node, state, output, example, metric, knobs, rollouts, store, job_id):
        return [SimpleNamespace(score=float(output["y"] == 2), error=None)] * rollouts

    kwargs = dict(run_node=run_node, rollout_from=rollout_from, decode_state=lambda raw: raw)
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

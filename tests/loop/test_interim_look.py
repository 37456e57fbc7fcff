"""The gate's interim look inside the loop. With plain answers, ``top_k=1`` already answers
the people whose fact ranks first (every third name), so raising it helps only the others:
a validation set that starts with five first-ranked people shows no gain on its first half
(run in the set's own order here; the loop's is seeded, tested last)."""

from __future__ import annotations

import io

import pytest

import optimas_lg
from optimas_lg.graph.system import System
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.progress import printer
from optimas_lg.loop.workspace import Workspace
from optimas_lg.store import queries
from tests.graphs import lookup


@pytest.fixture
def in_set_order(monkeypatch):
    monkeypatch.setattr(Workspace, "validation_order", lambda self: list(range(len(self.valset))))


def optimize(store, first_half_helped: bool, out: io.StringIO):
    examples = lookup.examples()
    ranked_first = [e for i, e in enumerate(examples) if i % 3 == 0][:5]
    helped = [e for i, e in enumerate(examples) if i % 3][:5]
    valset = helped + ranked_first if first_half_helped else ranked_first + helped
    trainset = [e for e in examples if e not in valset]
    settings = OptimizeConfig.from_dict({"ranking": "global", "gate": {"min_examples": 4}, "kinds": ["int"],
                                         "budget": {"patience": None}})
    return optimas_lg.optimize(lookup.builder, trainset, lookup.metric, valset=valset, store=store,
                               config={"style": "plain"}, settings=settings, max_iterations=1, progress=printer(out))


def proposal_evaluations(store, job_id: str) -> list[int]:
    return [e.payload["n"] for e in queries.job_events(store, job_id, "evaluation")
            if e.payload["label"] == "proposal"]


def test_a_try_not_ahead_on_the_first_half_runs_no_further(store, in_set_order):
    out = io.StringIO()
    result = optimize(store, first_half_helped=False, out=out)
    [decision] = result.decisions
    assert decision.changes["top_k"].new > 1 and not decision.accepted
    assert decision.n == 5 and "not ahead after 5 of 10 validation examples" in decision.reason, decision.reason
    assert proposal_evaluations(store, result.job_id) == [5]  # the second half was never run
    assert "[1] val 1.000 → 1.000 on the first 5  rejected  (not ahead" in out.getvalue()


def test_a_try_ahead_on_the_first_half_is_validated_on_all_and_recorded_once(store, in_set_order):
    out = io.StringIO()
    result = optimize(store, first_half_helped=True, out=out)
    [decision] = result.decisions
    assert decision.accepted and decision.n == 10 and len(decision.scores) == 10
    assert proposal_evaluations(store, result.job_id) == [10]
    assert "[1] val 0.500 → 1.000  accepted" in out.getvalue()


def test_the_gate_runs_the_validation_examples_in_a_seeded_order(store):
    """So that the part the look reads is a random one even when the set is sorted."""
    examples = lookup.examples()

    def order(seed: int) -> list[int]:
        config = OptimizeConfig.from_dict({"seed": seed})
        return Workspace.create(System.load(lookup.builder), lookup.metric, examples[:4], examples[4:], None, store,
                                config).validation_order()

    assert sorted(order(0)) == list(range(len(examples) - 4)) and order(0) != sorted(order(0))
    assert order(0) == order(0) != order(1)

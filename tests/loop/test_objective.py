"""Cost as an objective: with a cost weight, model selection picks a cheaper model whose
quality is within noise of the current one, and keeps the better one when it is not
(a real LangGraph graph whose node calls a scripted chat model chosen by a knob)."""

from __future__ import annotations

import pytest

from optimas_lg.api import optimize
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.objective import Objective
from tests.graphs import priced

PRICES = {"acme/large": {"prompt": 1000.0, "completion": 2000.0}, "acme/lite": {"prompt": 500.0, "completion": 1000.0},
          "acme/small": {"prompt": 250.0, "completion": 500.0}}
SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 3, "max_tokens": 32, "progress": False},
            "pairs_plan_accuracy": None,
            "pairs": {"samples": 3, "calls_per_node": 16}, "prices": PRICES, "objective": {"lambda_cost": 1.0}}


def _optimize(builder, store):
    data = priced.examples()
    return optimize(builder, data[:16], priced.metric, valset=data[16:28], store=store,
                    settings=OptimizeConfig.from_dict(SETTINGS), max_iterations=1, patience=None, progress=False)


def test_a_cost_weight_picks_the_cheaper_model_of_the_same_quality(store):
    result = _optimize(priced.with_lite, store)
    assert result.best_knobs["answer_model"] == "acme/lite", result.decisions
    decision = result.decisions[0]
    # same answers, half the price: +$0.025 per run on every example (score 1 - 0.025 vs 1 - 0.05)
    assert decision.mean_diff == pytest.approx(0.025) and decision.accepted


def test_a_cost_weight_keeps_the_better_model_when_the_cheap_one_loses_quality(store):
    result = _optimize(priced.builder, store)
    assert result.best_knobs["answer_model"] == "acme/large"
    assert all(d.mean_diff < 0 for d in result.decisions if d.changes), result.decisions


def test_objective_weights_cost_and_latency():
    assert Objective(lambda_cost=2.0, lambda_latency=0.5).value(1.0, 0.1, 0.4) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="lambda_cost"):
        Objective(lambda_cost=-1.0)


@pytest.mark.parametrize("limit, kept", [(0.02, False), (0.1, True)])
def test_a_cost_limit_per_run_refuses_a_better_model_that_costs_more(store, limit, kept):
    data = priced.examples()
    settings = {**SETTINGS, "objective": {"max_cost_per_run": limit}}
    result = optimize(priced.with_lite, data[:16], priced.metric, valset=data[16:28], store=store,
                      config={"answer_model": "acme/small"}, settings=OptimizeConfig.from_dict(settings),
                      max_iterations=1, patience=None, progress=False)
    (decision,) = result.decisions
    assert decision.changes and decision.mean_diff > 0  # a better model, by the metric
    assert decision.accepted is kept, decision.reason
    assert ("over the objective's limits" in decision.reason) is not kept
    assert result.best_knobs["answer_model"] == ("acme/small" if not kept else decision.changes["answer_model"].new)


def test_objective_limits_say_what_they_break():
    limits = Objective(max_cost_per_run=0.02, max_seconds_per_run=1.0)
    assert limits.violation(0.01, 0.5) is None
    assert limits.violation(0.05, 2.0) == "$0.0500 per run > max_cost_per_run $0.02; 2.000 s per run > " \
                                         "max_seconds_per_run 1"
    with pytest.raises(ValueError, match="max_cost_per_run"):
        Objective(max_cost_per_run=-1.0)

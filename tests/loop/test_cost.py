"""Cost as a budget: a price table turns recorded tokens into money, ``budget.max_cost``
stops the job, and the report shows the spend per node (a real LangGraph graph whose
node calls a scripted chat model that reports token usage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimas_lg.api import optimize
from optimas_lg.errors import SettingsError
from optimas_lg.loop.budget import Spent
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.report import load_history
from optimas_lg.pricing import PriceTable, Usage
from optimas_lg.store import models as m
from tests.graphs import priced

PRICES = {"acme/large": {"prompt": 1000.0, "completion": 2000.0}, "acme/small": {"prompt": 500.0, "completion": 1000.0}}
SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 2, "max_tokens": 32, "progress": False},
            "pairs_plan_accuracy": None,
            "pairs": {"samples": 2, "calls_per_node": 8}, "prices": PRICES}


def test_price_table_prices_local_hosted_and_user_models():
    table = PriceTable({"acme/large": {"prompt": 1000.0, "completion": 2000.0}})
    spend = table.spend([Usage("answer", "acme/large", 1000, 100), Usage("answer", "local/smollm2-135m@a1", 10**6, 0),
                         Usage("rewrite", "gpt-4o-mini", 10**6, 10**6), Usage(None, "mystery/model", 5, 5)])
    assert spend.by_node == pytest.approx({"answer": 1.2, "rewrite": 0.75})
    assert spend.total == pytest.approx(1.95) and spend.unpriced == ["mystery/model"]
    assert PriceTable().price("gpt-4o-mini-2024-07-18") == PriceTable().price("openai/gpt-4o-mini") == (0.15, 0.60)
    with pytest.raises(SettingsError, match="prices.x"):
        PriceTable({"x": {"prompt": -1.0, "completion": 0.0}})


def test_max_cost_stops_the_job_within_one_step_and_the_report_shows_cost_per_node(store):
    data = priced.examples()
    train, val = data[:16], data[16:28]
    per_run = (10 * 4 * 1000 + 5 * 2000) / 1e6  # one answer call of the large model: $0.05
    limit = 1.6  # baseline (12 runs) and collect (16) spend $1.40: what is left pays for no validation (12 runs)
    config = OptimizeConfig.from_dict({**SETTINGS, "budget": {"max_cost": limit, "max_iterations": 20,
                                                              "patience": None}})
    result = optimize(priced.builder, train, priced.metric, valset=val, store=store, settings=config, progress=False)
    assert "USD" in (result.stop_reason or ""), result.stop_reason
    spent = load_history(store, result.job_id).budget[-1].record
    # within one validation of the limit: over it when a step crossed it, under it when the next
    # validation could not be paid for
    assert isinstance(spent, Spent) and abs(spent.cost - limit) <= len(val) * per_run
    runs = store.select(m.Run, m.Run.job_id == result.job_id)
    assert len(runs) < 28 + 20 * len(val)  # it stopped long before its iterations ran out
    report = Path(result.report).read_text()
    assert "## Spend per node" in report and "| `answer` | `acme/large` |" in report
    section = report.split("## Per node: gain, latency, cost")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith("| `answer` |"))
    assert " s → " in row.split("|")[4] and row.split("|")[5].strip().startswith(f"${per_run:.4f} → ")

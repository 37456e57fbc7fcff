"""A ``langchain.agents.create_agent`` agent (ReAct loop, tool node, a knob read by a
``dynamic_prompt`` middleware inside its ``model`` node) optimizes end to end."""

from __future__ import annotations

import pytest

import optimas_lg
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.store import models as m
from tests.graphs import calc_agent

pytest.importorskip("langchain.agents", reason="needs langchain >= 1.0 (create_agent)")


@pytest.mark.slow  # a small job: ~25 s
def test_a_create_agent_agent_optimizes_its_system_prompt(store):
    examples = calc_agent.examples(20)
    settings = OptimizeConfig.from_dict({"gate": {"min_examples": 5}, "adapt_examples": 2,
                                         "lrf": {"epochs": 2, "max_tokens": 96, "progress": False},
                                         "pairs": {"samples": 2, "calls_per_node": 8}})
    result = optimas_lg.optimize(calc_agent.graph, examples[:10], calc_agent.exact, valset=examples[10:],
                                 store=store, settings=settings, max_iterations=1, patience=None, progress=False)
    assert store.get(m.Job, result.job_id).status == "done"
    assert result.val_before == pytest.approx(0.1)
    assert result.best_knobs == {"system_prompt": calc_agent.CALCULATOR} and result.val_after == 1.0
    assert isinstance(result.best_config, calc_agent.AgentConfig)
    tool_runs = store.select(m.NodeCall, m.NodeCall.node == "tools")
    assert tool_runs, "the tool node ran inside the optimized runs"

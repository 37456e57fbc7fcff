"""Honest accounting: every LLM token a job spends counts against ``max_llm_tokens`` and
shows in the report, wherever it was spent: the recorded system runs, a node run alone
(pair candidates, proposer candidates) and the prompt proposer's own LLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

import optimas_lg
from optimas_lg import Example
from optimas_lg.loop.budget import PROPOSER_TOKENS, REPLAY_TOKENS, SYSTEM_TOKENS, Budget
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.report import load_history
from optimas_lg.proposers import PromptConfig, PromptProposer
from optimas_lg.store import models as m
from optimas_lg.store import queries
from tests.graphs import orders, shapes

WRITER_TOKENS = 60  # what the fake prompt writer reports per reply


class Writer(BaseChatModel):
    """A prompt writer that reports its token use as a hosted model would."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        reply = AIMessage("<prompt>Classify the message; spot refund requests.</prompt>",
                          usage_metadata={"input_tokens": 50, "output_tokens": 10, "total_tokens": WRITER_TOKENS})
        return ChatResult(generations=[ChatGeneration(message=reply)])

    @property
    def _llm_type(self) -> str:
        return "fake-writer"


@pytest.mark.slow  # one round of a small job with a prompt proposal: ~35 s
def test_every_token_counts_against_the_budget_and_shows_in_the_report(store):
    examples = orders.examples(24)
    settings = OptimizeConfig.from_dict({
        "gate": {"min_examples": 5}, "lrf": {"epochs": 1, "max_tokens": 96, "progress": False},
        "pairs": {"samples": 2, "calls_per_node": 12}, "adapt_examples": 2, "kinds": ["prompt"]})
    writer = PromptProposer(PromptConfig(rounds=1, num_candidates=2, max_inputs=4), llm=Writer())
    result = optimas_lg.optimize(orders.graph, examples[:12], orders.resolved, valset=examples[12:], store=store,
                                 settings=settings, proposers={"prompt": writer}, max_iterations=1,
                                 patience=None, progress=False)
    spent = load_history(store, result.job_id).budget[-1].record
    by_source = spent.tokens_by_source
    assert set(by_source) == {SYSTEM_TOKENS, REPLAY_TOKENS, PROPOSER_TOKENS}, by_source
    assert by_source[SYSTEM_TOKENS] == queries.job_spend(store, result.job_id)[1]  # the recorded runs, all of them
    proposals = [e.payload for e in queries.job_events(store, result.job_id, "proposal")]
    assert by_source[PROPOSER_TOKENS] == sum(p["cost"]["llm_tokens"] for p in proposals) == 2 * WRITER_TOKENS
    assert by_source[REPLAY_TOKENS] > 0 and spent.llm_tokens == sum(by_source.values())
    assert (result.spent.system_runs, result.spent.tokens_by_source) == (spent.system_runs, by_source)  # in the API
    assert result.to_dict()["spent"]["tokens_by_source"] == by_source
    assert Budget(max_llm_tokens=spent.llm_tokens).stop_reason(spent, 0) == \
        f"budget reached: {spent.llm_tokens} LLM tokens (limit {spent.llm_tokens})"  # the limit holds the whole sum
    report = Path(result.report).read_text()
    assert f"{spent.llm_tokens:,} LLM tokens (system runs {by_source[SYSTEM_TOKENS]:,}, nodes run alone " \
           f"{by_source[REPLAY_TOKENS]:,}, proposer LLM {2 * WRITER_TOKENS})" in report


def test_a_limit_the_first_steps_used_up_starts_no_round(store):
    """Baseline, collection and pairs spend before the first round; a limit they reached
    (a deadline, a token cap) stops the job there instead of after one more round."""
    examples = orders.examples(24)
    settings = OptimizeConfig.from_dict({"gate": {"min_examples": 5}, "kinds": ["choice"],
                                         "lrf": {"epochs": 1, "max_tokens": 64, "progress": False},
                                         "pairs": {"samples": 2, "calls_per_node": 4}})
    result = optimas_lg.optimize(orders.graph, examples[:12], orders.resolved, valset=examples[12:], store=store,
                                 settings=settings, max_iterations=3, max_llm_tokens=1, progress=False)
    assert result.decisions == [] and result.best_knobs == result.initial_knobs
    assert (result.stop_reason or "").startswith("budget reached:") and "LLM tokens (limit 1)" in result.stop_reason
    assert queries.job_events(store, result.job_id, "pick") == []


def test_no_round_starts_that_would_likely_end_past_max_seconds():
    budget = Budget(max_seconds=100)
    assert budget.no_time_for_a_round(60.0, 30.0) is None  # 90 <= 100: another round fits
    assert budget.no_time_for_a_round(60.0, 0.0) is None  # no round finished yet: nothing to go by
    assert Budget().no_time_for_a_round(1e9, 1e9) is None  # no limit
    assert budget.no_time_for_a_round(75.0, 30.0) == ("budget reached: 75 seconds spent and the slowest round "
                                                      "took 30, so another would end past max_seconds 100")


class StepClock:
    """Every step of the loop takes ``STEP`` seconds on this clock (it advances on each read)."""

    STEP = 100.0

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += self.STEP / 2  # two reads per step: its start and its end
        return self.now


def test_the_loop_stops_before_a_round_it_cannot_finish_in_time(store, monkeypatch):
    from optimas_lg.loop import nodes
    from tests.graphs import lookup

    monkeypatch.setattr(nodes, "time", StepClock())
    examples = lookup.examples()
    settings = OptimizeConfig.from_dict({"ranking": "random", "gate": {"min_examples": 4}, "kinds": ["choice"],
                                         "budget": {"patience": None}})
    result = optimas_lg.optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                                 settings=settings, max_iterations=10, max_seconds=1500, progress=False)
    spent = load_history(store, result.job_id).budget[-1].record
    assert "the slowest round took" in (result.stop_reason or ""), result.stop_reason
    assert spent.seconds < 1500 and spent.iterations >= 2, spent


def test_a_test_set_is_scored_outside_the_budget_and_changes_no_decision(store):
    """The test set's runs before and after the loop are recorded as ``purpose="test"`` and
    no limit counts them: with or without a test set, the same budget buys the same rounds."""
    from tests.graphs import lookup

    examples = lookup.examples()
    settings = OptimizeConfig.from_dict({"gate": {"min_examples": 4}, "kinds": ["choice", "int"],
                                         "budget": {"patience": None}})
    jobs = [optimas_lg.optimize(lookup.builder, examples[:10], lookup.metric, valset=examples[10:16], testset=test,
                                store=store, settings=settings, max_iterations=4, max_system_runs=40, progress=False)
            for test in (examples[16:], None)]
    spent = [load_history(store, job.job_id).budget[-1].record for job in jobs]
    assert [(d.node, d.changes, d.accepted) for d in jobs[0].decisions] == \
        [(d.node, d.changes, d.accepted) for d in jobs[1].decisions]
    assert spent[0].system_runs == spent[1].system_runs <= 40
    with_test, _ = queries.job_spend(store, jobs[0].job_id, budgeted=False)
    assert with_test == spent[0].system_runs + 2 * len(examples[16:])


def test_a_search_whose_candidates_fail_runs_the_current_values_once(store):
    """Failing candidates are compared with the current values' check on the same batch;
    the search already ran it, so running it again would spend the runs kept for the gate."""
    examples = [Example(key=f"e{i}", inputs={"n": 0}) for i in range(12)]
    looped = shapes.runtime_router().compile().with_config(recursion_limit=4)  # a limit of 4 or 5 bumps fails
    settings = OptimizeConfig.from_dict({"gate": {"min_examples": 3}, "kinds": ["int"], "global_examples": 4,
                                         "proposers": {"int": {"objective": "global", "n_trials": 6}}})
    result = optimas_lg.optimize(looped, examples[:6], lambda ex, out: float(out["n"] == 3), valset=examples[6:],
                                 store=store, settings=settings, max_iterations=1, patience=None, progress=False)
    train = {e.key for e in examples[:6]}
    checks = [r for r in store.select(m.Run, m.Run.job_id == result.job_id, m.Run.purpose == "eval")
              if r.example_key in train]  # the search's trials, each on the same 4 training examples
    assert any(r.error for r in checks), "no candidate failed: the test no longer covers the comparison"
    of_current = [r for r in checks if store.get(m.ConfigVersion, r.config_id).values == result.initial_knobs]
    assert len(of_current) == 4  # the search's first trial; before the fix, 8

"""The optimization report: built from store events alone, for finished and partial jobs."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from optimas_lg.cli import app
from optimas_lg.errors import StoreError
from optimas_lg.loop.budget import Spent
from optimas_lg.loop.records import Change, Decision, Evaluation, Final, LRFEvent
from optimas_lg.loop.report import write_report
from optimas_lg.proposers import Cost, Proposal

OLD_PROMPT = "Answer the question.\nBe brief."
NEW_PROMPT = "Answer the question in one word.\nIf unsure, say `unknown`.\nNever explain | pipes kept."
TRUST = "LRF not trusted (0.44 [0.28, 0.61] 30 pairs / 30 examples): top 3 checked on the train metric"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = [  # iteration, node, knob, kind, old, new, accepted, val current, val proposed
    (1, "answer", "answer_prompt", "prompt", OLD_PROMPT, NEW_PROMPT, True, 0.40, 0.55),
    (2, "retrieve", "top_k", "int", 3, 5, False, 0.55, 0.53),
    (3, "answer", "model", "choice", "local/smollm2-135m", "local/qwen", False, 0.55, 0.56),
]


def _job(store, finished: bool = True) -> int:
    """An optimize job: baseline, LRF training and adaptation, three iterations, final event
    if finished; every event written as the loop writes it, from its record."""
    job = store.create_job("optimize", target="examples/qa.py:builder", meta={"budget_runs": 500})

    def log(record, **where):  # a Proposal's own ``kind`` is its knob's kind: its event kind is "proposal"
        store.add_event(job, "proposal" if isinstance(record, Proposal) else record.kind, record.to_json(), **where)

    values = {"answer_prompt": OLD_PROMPT, "top_k": 3, "model": "local/smollm2-135m"}
    initial = current = store.add_config(values)
    log(Evaluation("val", "baseline", initial, [0.4] * 20, 0), iteration=0)
    log(LRFEvent("initial", 1, 120, {"answer": 0.71, "retrieve": 0.64, "__overall__": 0.68}, train_loss=0.52))
    for it, node, knob, kind, old, new, accepted, val_cur, val_new in STEPS:
        trust = {"trust_decision": TRUST} if node == "retrieve" else {}
        log(Proposal(node, knob, kind, old, new, {**values, knob: new}, 0.1, 0.3, Cost(node_runs=4), [(new, 0.3)],
                     trust), node=node, iteration=it)
        if accepted:
            values = {**values, knob: new}
            current = store.add_config(values, parent_id=current)
        log(Decision(node, {knob: Change(old, new)}, 20, accepted, val_cur, val_new, val_new - val_cur, 0.03,
                     "paired z>1", "gain" if accepted else "no significant gain", current if accepted else None),
            node=node, iteration=it)
        log(Spent(it, 100 * it, 20_000 * it, 30.0 * it), iteration=it)
        if accepted:
            log(LRFEvent("adapt", 2, 160, {"answer": 0.78, "retrieve": 0.66}, train_loss=0.4), iteration=it)
    if finished:
        log(Final(initial, current, 0.40, 0.55, 0.38, 0.50, "budget exhausted"))
        store.finish_job(job)
    return job


def test_report_of_a_finished_job(store, tmp_path):
    path = write_report(store, _job(store), tmp_path / "out")
    md = path.read_text()
    for name in ("validation.png", "lrf_accuracy.png", "budget.png"):
        data = (path.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
        assert f"]({name})" in md
    assert (path.parent / "report.html").read_text().count("<img") == 3
    assert "budget exhausted" in md and "0.400 → 0.550 (+0.150)" in md and "0.380 → 0.500" in md
    assert f"```text\n{OLD_PROMPT}\n```" in md  # prompts in full, old and new
    assert f"```text\n{NEW_PROMPT}\n```" in md
    assert "Unchanged: `model`=`local/smollm2-135m`, `top_k`=`3`" in md
    decisions = [line for line in md.splitlines() if line.startswith("| 1 | answer |") or
                 line.startswith("| 2 | retrieve |") or line.startswith("| 3 | answer |")]
    assert len(decisions) == 6  # one decision row and one proposal row per iteration
    assert any("3 → 5" in d and "0.550 vs 0.530" in d and "❌ no" in d for d in decisions)
    assert any("0.400 vs 0.550" in d and "+0.150 ± 0.030" in d and "✅ yes" in d for d in decisions)
    assert "| 2 | retrieve | `top_k` | int | 3 → 5 |" in md
    assert f"| 1 | {TRUST} | node_runs=4" in md  # the proposal's trust decision, in its own column
    assert "answer: 0.71, retrieve: 0.64, overall: 0.68" in md
    assert '"budget_runs": 500' in md
    assert "## Missing" not in md


def test_a_round_that_kept_the_current_values_is_not_counted_or_shown_as_validated(store, tmp_path):
    job = _job(store)
    store.add_event(job, "decision", Decision("answer", {}, 20, False, 0.55, 0.55, 0.0, 0.0, "no change proposed",
                                              "the search kept the current values").to_json(), node="answer",
                    iteration=4)
    md = write_report(store, job, tmp_path).read_text()
    assert "| **accepted changes** | 1 of 3 changes validated (1 round kept the current values) |" in md
    row = next(line for line in md.splitlines() if line.startswith("| 4 | answer |"))
    assert "| — | — | — | ❌ no | no change proposed |" in row  # no val scores, diff or n for a change never run


def test_partial_job_says_what_is_missing(store, tmp_path):
    job = _job(store, finished=False)
    md = write_report(store, job, tmp_path).read_text()
    assert "no final event: the job is still running" in md and "not finished (the job is 'running'" in md
    assert "0.400 → 0.550 (+0.150) (so far)" in md
    assert f"```text\n{NEW_PROMPT}\n```" in md  # best config so far is still diffed
    error = "job 1: every val run (proposal, config 3) failed; the first error: KeyError: 'score_table'"
    store.finish_job(job, "failed", {"error": error})
    md = write_report(store, job, tmp_path).read_text()
    assert f"failed: {error}" in md and "the job is failed (its error is the stop reason)" in md


def test_job_with_no_events_still_reports(store, tmp_path):
    job = store.create_job("optimize")
    path = write_report(store, job, tmp_path)
    md = path.read_text()
    assert "no baseline validation evaluation" in md and "No decisions recorded." in md
    assert not list(tmp_path.glob("*.png"))


def test_unknown_job_is_a_clear_error(store, tmp_path):
    with pytest.raises(StoreError, match="no job 99"):
        write_report(store, 99, tmp_path)


def test_cli_writes_to_the_storage_home(store, home):
    job = _job(store)
    result = CliRunner().invoke(app, ["report", str(job), "--store", store.url])
    assert result.exit_code == 0, result.output
    assert (home / "reports" / store.identity / str(job) / "report.md").exists()
    assert "report.md" in result.output
    missing = CliRunner().invoke(app, ["report", "12345", "--store", store.url])
    assert missing.exit_code == 1 and "no job 12345" in missing.output


def test_events_that_do_not_read_back_are_listed_not_fatal(store, tmp_path):
    job = _job(store, finished=False)
    for kind in ("evaluation", "lrf", "proposal", "decision", "budget", "final"):
        store.add_event(job, kind, {}, iteration=9)
    md = write_report(store, job, tmp_path).read_text()
    assert "## Decision log" in md and "0.400 → 0.550 (+0.150) (so far)" in md
    assert "5 recorded events could not be read" in md and "decision event" in md  # an empty budget reads as zero


def test_cells_are_whole_floats_plain_and_no_change_says_so(store, tmp_path):
    """No float noise, no empty ``{} → {}``, no cut cells; spend by source; a coin-flip LRF head warned about."""
    job = store.create_job("optimize", target="t.py:g")
    long_reason = "the gain is inside the noise band of the paired test on this validation set " * 2
    initial = store.add_config({"temperature": 0.1, "tools": {}})
    best = store.add_config({"temperature": 0.1 + 0.2, "tools": {}}, parent_id=initial)
    store.add_event(job, "evaluation", Evaluation("val", "baseline", initial, [0.5] * 4, 0).to_json(), iteration=0)
    store.add_event(job, "lrf", LRFEvent("initial", 1, 30, {"answer": 0.5, "plan": 0.9, "__overall__": 0.7},
                                         n_eval_pairs=10, n_eval_by_node={"answer": 6, "plan": 4}).to_json())
    store.add_event(job, "proposal", Proposal("plan", "tools", "choice", {}, {}, {"tools": {}}, 0.2, 0.2, Cost(),
                                              [({}, 0.2)]).to_json(), node="plan", iteration=1)
    store.add_event(job, "decision", Decision("answer", {"temperature": Change(0.1, 0.1 + 0.2)}, 4, True, 0.5, 0.75,
                                              0.25, 0.1, "paired", long_reason, best).to_json(),
                    node="answer", iteration=1)
    spent = Spent(1, 40, 1234, 5.0, tokens_by_source={"system runs": 1000, "proposer LLM": 234})
    store.add_event(job, "budget", spent.to_json(), iteration=1)
    store.add_event(job, "final", Final(initial, best, 0.5, 0.75, None, None, "budget").to_json())
    md = write_report(store, job, tmp_path).read_text()
    assert "0.30000000000000004" not in md and "`temperature`: 0.1 → 0.3" in md
    assert "{} → {}" not in md and "unchanged: (empty)" in md
    assert long_reason.strip() in md and "…" not in md
    assert "1,234 LLM tokens (system runs 1,000, proposer LLM 234)" in md
    warning = next(line for line in md.splitlines() if line.startswith("- ⚠"))
    assert "`answer`" in warning and "0.50 on n=6 pairs" in warning and "plan" not in warning


@pytest.mark.slow  # a small job run twice: ~25 s
def test_a_resumed_job_reports_each_step_once(store):
    """A loop stopped after its first proposal and resumed: one proposal and one decision row per iteration."""
    from pathlib import Path

    from optimas_lg.api import optimize
    from optimas_lg.loop.config import OptimizeConfig
    from tests.graphs import lookup

    settings = OptimizeConfig.from_dict({"gate": {"min_examples": 5}, "adapt_examples": 2,
                                         "lrf": {"epochs": 2, "max_tokens": 64, "progress": False},
                                         "pairs": {"samples": 3, "calls_per_node": 8}})
    examples = lookup.examples()

    def stop_after_propose(node, state):
        if node == "propose" and state["iteration"] == 1:
            raise KeyboardInterrupt

    kwargs = dict(valset=examples[12:], settings=settings, max_iterations=1, patience=None)
    with pytest.raises(KeyboardInterrupt):
        optimize(lookup.builder, examples[:12], lookup.metric, store=store, progress=stop_after_propose, **kwargs)
    result = optimize(lookup.builder, examples[:12], lookup.metric, store=store, resume=1, progress=False, **kwargs)
    md = Path(result.report).read_text()
    rows = [line for line in md.splitlines() if re.match(r"\| 1 \| \* \| ", line)]  # round 1: the system round
    assert len(rows) == 2, rows  # its proposal and its decision, once each


def test_a_job_that_is_not_an_optimization_has_no_report(store, tmp_path):
    job = store.create_job("run")
    with pytest.raises(StoreError, match=f"job {job} is a 'run' job; reports are of optimize jobs"):
        write_report(store, job, tmp_path)

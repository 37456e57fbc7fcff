"""The optimizer loop end to end on a small real system (real LangGraph, store, LRF
training and checkpointer; no LLM): it must find the better config, record every
decision, and survive SIGKILL with ``--resume``."""

from __future__ import annotations

import gc
import json
import os
import warnings
import weakref
from pathlib import Path

import pytest

from optimas_lg.api import optimize, optimize_spec, resume_job
from optimas_lg.errors import SettingsError
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.records import PairsCollected
from optimas_lg.loop.report import load_history
from optimas_lg.loop.workspace import Workspace
from optimas_lg.proposers import ChoiceProposer, Search
from optimas_lg.store import Store, queries
from optimas_lg.store import models as m
from tests.graphs import lookup

LRF_RANKED = {"objective": "lrf"}  # lookup's runs are cheap: by default its knobs would be searched on the metric
# A fixture's few examples could never give a trusted LRF (loop.pair_plan); these tests run its path anyway.
SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 2, "max_tokens": 64, "progress": False},
            "pairs_plan_accuracy": None,
            "pairs": {"samples": 3, "calls_per_node": 8}, "proposers": {"choice": LRF_RANKED, "int": LRF_RANKED}}


def _config() -> OptimizeConfig:
    return OptimizeConfig.from_dict(SETTINGS)


def test_loop_finds_the_better_config_and_records_decisions(store):
    examples = lookup.examples()
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      settings=_config(), max_iterations=4, patience=None)
    assert result.val_before == 0.0
    assert result.val_after > result.val_before
    assert result.best_knobs != result.initial_knobs
    assert lookup.metric(examples[0], {"answer": "x"}) == 0.0  # the metric can fail
    decisions = load_history(store, result.job_id).decisions
    assert [d.record for d in decisions] == result.decisions and len(decisions) == 4
    # each round's node and why, recorded: the first pass by the headroom the pairs measured
    headroom = next(r for r in result.history if isinstance(r, PairsCollected)).headroom
    picks = [p.record for p in load_history(store, result.job_id).picks]
    assert [p.node for p in picks] == [d.node for d in result.decisions]
    first = max(headroom, key=headroom.get)
    assert headroom[first] > 0 and picks[0].node == first and "largest measured headroom" in picks[0].reason
    assert "## Node order" in Path(result.report).read_text()
    assert any(d.accepted for d in result.decisions)
    assert store.get(m.Job, result.job_id).status == "done"
    assert store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id) > 0
    assert Path(result.report).is_file()
    # the best config is an instance of the user's context schema
    assert isinstance(result.best_config, lookup.Config)


def _write_jsonl(path: Path, examples) -> None:
    path.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in examples))


def test_system_run_budget_holds_inside_pair_collection(store):
    examples = lookup.examples()
    train, val = examples[:12], examples[12:]
    limit = 50  # baseline (8 val runs) + collect (12) leave 30 for the pairs step, which alone would take 40
    result = optimize(lookup.builder, train, lookup.metric, valset=val, store=store, settings=_config(),
                      max_iterations=4, patience=None, max_system_runs=limit)
    runs = store.select(m.Run, m.Run.job_id == result.job_id)
    rollouts = [r for r in runs if r.purpose == "rollout"]
    assert 0 < len(rollouts) <= limit - len(val) - len(train)  # the pairs step stayed inside what was left
    # the budget is checked between steps: only the one validation after the pairs step runs over
    assert len(runs) <= limit + len(val)
    assert "system runs" in (result.stop_reason or "")
    assert store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id) > 0


def test_pairs_get_at_most_their_share_of_the_runs_left(store):
    examples = lookup.examples()
    train, val = examples[:12], examples[12:]
    limit = 60  # baseline (8) + collect (12) leave 40; a quarter of it, 10, for the pairs
    settings = OptimizeConfig.from_dict({**SETTINGS, "pairs_share": 0.25})
    result = optimize(lookup.builder, train, lookup.metric, valset=val, store=store, settings=settings,
                      max_iterations=1, patience=None, max_system_runs=limit, progress=False)
    rollouts = store.select(m.Run, m.Run.job_id == result.job_id, m.Run.purpose == "rollout")
    assert 0 < len(rollouts) <= 10


class BudgetProbe(ChoiceProposer):
    """Keeps the current option and notes what the loop said it may spend, and what was spent."""

    seen: list[tuple[int | None, int]] = []

    def uses_lrf(self, cost):
        return False

    def search(self, ctx, knob, evaluator):
        BudgetProbe.seen.append((ctx.system_runs_left(), queries.job_spend(ctx.store, ctx.job_id)[0]))
        return Search(ctx.current[knob.name], {"rule": "keep"})


def test_cheap_runs_spend_nothing_on_pairs_and_a_round_gets_its_share_of_the_runs_left(store, capsys):
    """lookup's runs call no LLM, so its numeric knobs are searched on the metric and the
    probe ranks with no LRF: no pair is collected, no LRF trained. The first round may spend
    half of what is left after a validation for each of the two reached nodes, so the
    second node's round is not starved."""
    examples = lookup.examples()
    train, val = examples[:12], examples[12:]
    settings = OptimizeConfig.from_dict({k: v for k, v in SETTINGS.items() if k != "proposers"})
    BudgetProbe.seen = []
    result = optimize(lookup.builder, train, lookup.metric, valset=val, store=store, settings=settings,
                      proposers={"choice": BudgetProbe}, max_iterations=3, patience=None, max_system_runs=200)
    assert "pairs     per node {}; none for retrieve, answer (no knob they read is ranked with the LRF)" in \
        capsys.readouterr().err
    assert store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id) == 0
    assert store.count(m.LRFCheckpoint, m.LRFCheckpoint.job_id == result.job_id) == 0
    left, spent = BudgetProbe.seen[0]
    assert left == (200 - spent - 2 * len(val)) // 2


class Overspender(ChoiceProposer):
    """A user's proposer that runs global checks past its share, until no validation is affordable."""

    def uses_lrf(self, cost):
        return False

    def search(self, ctx, knob, evaluator):
        while 200 - queries.job_spend(ctx.store, ctx.job_id)[0] >= 6:
            ctx.global_check(ctx.current)
        return Search(knob.knob.options[-1], {"rule": "last option"})


def test_a_change_the_budget_cannot_validate_is_reported_unvalidated(store, capsys):
    """No validation score is shown for a change that was never run on validation."""
    examples = lookup.examples()
    settings = OptimizeConfig.from_dict({**{k: v for k, v in SETTINGS.items() if k != "proposers"},
                                         "kinds": ["choice"]})
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      settings=settings, proposers={"choice": Overspender}, max_iterations=1, patience=None,
                      max_system_runs=200)
    decision = load_history(store, result.job_id).decisions[0].record
    assert (decision.n, decision.accepted, decision.scores) == (0, False, [])
    assert "[1] not validated  rejected  (not validated for lack of system runs (budget.max_system_runs = 200))" \
        in capsys.readouterr().err


class FirstOption(ChoiceProposer):
    """A user's proposer: always proposes the last option, and counts its calls."""

    calls = 0

    def search(self, ctx, knob, evaluator):
        FirstOption.calls += 1
        return Search(knob.knob.options[-1], {"rule": "last option"})


def test_a_user_proposer_runs_inside_the_loop(store):
    examples = lookup.examples()
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      settings=_config(), proposers={"choice": FirstOption}, max_iterations=2, patience=None,
                      progress=False)
    proposals = load_history(store, result.job_id).proposals
    assert FirstOption.calls >= 1
    assert any(p.record.details.get("rule") == "last option" for p in proposals)
    assert store.get(m.Job, result.job_id).meta["proposer_overrides"] == {"choice": f"{__name__}:FirstOption"}


def test_a_finished_job_releases_its_reward_model(store):
    """Two jobs in one process: nothing keeps the first job's workspace (and its LRF) alive."""
    examples = lookup.examples()
    seen = []

    def watch(node, state):  # find the driven job's workspace, keep only weak references
        if node == "train_lrf":
            with warnings.catch_warnings():  # isinstance() on every object wakes deprecated torch aliases
                warnings.simplefilter("ignore")
                ws = next(o for o in gc.get_objects() if isinstance(o, Workspace) and o.job_id == state["job_id"])
            seen.append(weakref.ref(ws.rewards.model))

    for _ in range(2):
        optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store, settings=_config(),
                 max_iterations=1, progress=watch)
        gc.collect()
        assert seen[-1]() is None, "the finished job's reward model is still referenced"


@pytest.mark.reliability
def test_a_failing_loop_marks_the_job_failed_and_keeps_its_records(store):
    examples = lookup.examples()

    def broken(node, state):
        if node == "collect":
            raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store, settings=_config(),
                 max_iterations=1, progress=broken)
    job = store.select(m.Job)[-1]
    assert job.status == "failed" and "progress display broke" in job.meta["error"]
    assert load_history(store, job.id).evaluation("val", "baseline") is not None  # what was recorded stays


@pytest.mark.reliability
def test_a_job_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path, store):
    """The job row exists but no step was checkpointed (killed while loading): resuming
    starts the loop over instead of failing."""
    examples = lookup.examples()
    _write_jsonl(tmp_path / "train.jsonl", examples[:12])
    _write_jsonl(tmp_path / "val.jsonl", examples[12:])
    spec = JobSpec("tests/graphs/lookup.py:builder", "tests/graphs/lookup.py:metric", str(tmp_path / "train.jsonl"),
                   str(tmp_path / "val.jsonl"), labels=["answer"])
    config = OptimizeConfig.from_dict({**SETTINGS, "budget": {"max_iterations": 1}})
    job_id = spec.create_job(store, config)
    result = resume_job(job_id, store, progress=False)
    assert result.job_id == job_id and store.get(m.Job, job_id).status == "done"
    assert len(result.decisions) == 1


@pytest.mark.reliability
def test_an_interrupted_job_resumes_on_either_store_backend(tmp_path, store_url):
    """Ctrl-C after the LRF is trained marks the job interrupted; resuming continues from
    the store's own checkpoints (a PostgreSQL store keeps them in its database)."""
    examples = lookup.examples()
    _write_jsonl(tmp_path / "train.jsonl", examples[:12])
    _write_jsonl(tmp_path / "val.jsonl", examples[12:])
    spec = JobSpec("tests/graphs/lookup.py:builder", "tests/graphs/lookup.py:metric", str(tmp_path / "train.jsonl"),
                   str(tmp_path / "val.jsonl"), labels=["answer"])
    config = OptimizeConfig.from_dict({**SETTINGS, "budget": {"max_iterations": 2}})

    def interrupt(node, state):
        if node == "train_lrf":
            raise KeyboardInterrupt

    with Store(store_url) as store:
        with pytest.raises(KeyboardInterrupt):
            optimize_spec(spec, config, store, progress=interrupt)
        job = store.select(m.Job)[-1]
        assert job.status == "interrupted"
        result = resume_job(job.id, store, progress=False)
        assert store.get(m.Job, job.id).status == "done" and len(result.decisions) == 2
        history = load_history(store, job.id)
        assert sum(e.record.stage == "initial" for e in history.lrf) == 1  # steps before the stop are not redone
        assert sum(e.record.label == "baseline" for e in history.evaluations) == 1


_SIGTERMED = """
import os, signal, sys, time
from optimas_lg.api import optimize
from tests.graphs import lookup
from tests.loop.test_loop import _config

def stop(node, state):
    if node == "train_lrf":
        os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler's stop sends
        time.sleep(30)
examples = lookup.examples()
try:
    optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=sys.argv[1],
             settings=_config(), max_iterations=1, progress=stop)
except KeyboardInterrupt:
    sys.exit(3)
"""


@pytest.mark.reliability
def test_sigterm_stops_a_python_api_job_as_interrupted(tmp_path):
    """SIGTERM in ``optimize()`` ends the job the way Ctrl-C does (``interrupted``, resumable);
    by default it would kill the process with the job still ``running``."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 's.db'}"
    done = subprocess.run([sys.executable, "-c", _SIGTERMED, url], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OPTIMAS_LG_HOME": str(tmp_path)})
    assert done.returncode == 3, done.stderr[-2000:]
    with Store(url) as store:
        (job,) = store.select(m.Job)
        assert job.status == "interrupted" and "KeyboardInterrupt" in job.meta["error"]


@pytest.mark.reliability
def test_two_stores_in_one_home_never_share_a_job(home):
    """Job 1 of one store and job 1 of another: separate checkpoint threads and reports."""
    examples = lookup.examples()
    results = []
    for name in ("a.db", "b.db"):
        with Store(f"sqlite:///{home / name}") as store:
            results.append(optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                                    settings=_config(), max_iterations=1, patience=None, progress=False))
    assert [r.job_id for r in results] == [1, 1]
    assert [len(r.decisions) for r in results] == [1, 1]  # the second did not continue the first's thread
    assert results[0].report != results[1].report


def test_random_ranking_collects_no_pairs_trains_no_lrf_and_keeps_the_gate(store):
    examples = lookup.examples()
    config = OptimizeConfig.from_dict({**SETTINGS, "ranking": "random"})
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      settings=config, max_iterations=4, patience=None)
    assert store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id) == 0
    assert store.count(m.LRFCheckpoint, m.LRFCheckpoint.job_id == result.job_id) == 0
    assert len(result.decisions) == 4  # every round still went through the gate
    assert all(d.accepted == (d.val_proposed > d.val_current) for d in result.decisions if d.changes)


def test_global_ranking_trains_no_lrf_and_checks_candidates_on_the_train_metric(store):
    examples = lookup.examples()
    config = OptimizeConfig.from_dict({**SETTINGS, "ranking": "global"})
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      settings=config, max_iterations=2, patience=None)
    assert store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id) == 0
    assert store.count(m.LRFCheckpoint, m.LRFCheckpoint.job_id == result.job_id) == 0
    proposals = [e.payload for e in queries.job_events(store, result.job_id, "proposal")]
    assert proposals and all(p["details"].get("objective") == "global"  # a joint search on the metric, or
                             or "no LRF (ranking=global)" in p["details"]["trust_decision"]  # all checked
                             for p in proposals)
    assert any(p["cost"]["system_runs"] > 0 for p in proposals)  # candidates were run through the graph
    assert all(d.accepted == (d.val_proposed > d.val_current) for d in result.decisions if d.changes)


def test_no_adapt_keeps_the_first_lrf_after_an_accepted_change(store):
    examples = lookup.examples()
    config = OptimizeConfig.from_dict({**SETTINGS, "adapt_lrf": False})
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      settings=config, max_iterations=4, patience=None)
    assert any(d.accepted for d in result.decisions)
    assert store.count(m.LRFCheckpoint, m.LRFCheckpoint.job_id == result.job_id) == 1  # the initial one only


def test_an_unknown_ranking_is_a_settings_error():
    with pytest.raises(SettingsError, match="ranking"):
        OptimizeConfig.from_dict({"ranking": "global-ish"})


def test_no_fresh_runs_after_an_accepted_change_in_the_last_iteration(store):
    """The adapt step's fresh runs are the next round's recorded inputs; after the last
    iteration nothing reads them, and they were 13% of a 60-run budget."""
    examples = lookup.examples()
    config = OptimizeConfig.from_dict({**SETTINGS, "ranking": "random", "kinds": ["choice"]})
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      settings=config, proposers={"choice": FirstOption}, max_iterations=1, patience=None,
                      progress=False)
    assert [d.accepted for d in result.decisions] == [True]
    collect = store.count(m.Run, m.Run.job_id == result.job_id, m.Run.purpose == "collect")
    assert collect == 12  # the first collect only


def test_resuming_a_job_that_is_not_an_optimization_says_what_it_is(store):
    from optimas_lg.errors import OptimasError

    run_job = store.create_job("run")
    with pytest.raises(OptimasError, match=rf"job {run_job} in store .* is a 'run' job; only optimize jobs resume"):
        resume_job(run_job, store, progress=False)
    with pytest.raises(OptimasError, match="no optimization job 99"):
        resume_job(99, store, progress=False)


def test_a_job_resumed_from_python_keeps_its_own_settings_and_refuses_others(store):
    """Resumed without settings, a job runs under those it started with (it ran the default
    budget before); given other ones, it says which instead of mixing two jobs."""
    examples = lookup.examples()
    args = (lookup.builder, examples[:12], lookup.metric)

    def stop_at_pairs(node, state):
        if node == "pairs":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize(*args, valset=examples[12:], store=store, settings=_config(), max_iterations=1,
                 max_system_runs=60, progress=stop_at_pairs)
    job = store.select(m.Job)[-1].id
    with pytest.raises(SettingsError, match=rf"job {job} runs under its own settings; resuming it under others "
                                            r"\(budget.max_iterations 1 → 3\)"):
        optimize(*args, valset=examples[12:], store=store, settings=_config(), max_iterations=3,
                 max_system_runs=60, resume=job, progress=False)
    result = optimize(*args, valset=examples[12:], store=store, resume=job, progress=False)
    assert result.job_id == job and len(result.decisions) == 1  # max_iterations 1, not the default 6
    assert store.count(m.Run, m.Run.job_id == job) <= 60


def test_the_cli_refuses_data_or_settings_beside_resume(store):
    from typer.testing import CliRunner

    from optimas_lg.cli import app

    result = CliRunner().invoke(app, ["optimize", "--resume", "1", "--seed", "5", "--max-iterations", "9",
                                      "--store", store.url])
    assert result.exit_code == 1
    assert "--resume 1 continues the job with its own data and settings; drop --seed, --max-iterations" \
        in result.output

"""The optimizer loop end to end on a small real system (real LangGraph, store, LRF
training and checkpointer; no LLM): it must find the better config, record every
decision, and survive SIGKILL with ``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimas_lg.api import optimize
from optimas_lg.errors import SettingsError
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.store import models as m
from tests.graphs import lookup

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 2, "max_tokens": 64, "progress": False},
            "pairs": {"samples": 3, "calls_per_node": 8}}


def _config() -> OptimizeConfig:
    return OptimizeConfig.from_dict(SETTINGS)


def test_loop_finds_the_better_config_and_records_decisions(store):
    examples = lookup.examples()
    result = optimize(lookup.builder, examples[:12], lookup.metric, valset=examples[12:], store=store,
                      config=_config(), max_iterations=4, patience=None)
    assert result.val_before == 0.0
    assert result.val_after > result.val_before
    assert result.best_knobs != result.initial_knobs
    assert lookup.metric(examples[0], {"answer": "x"}) == 0.0  # the metric can fail
    decisions = store.select(m.OptimizerEvent, m.OptimizerEvent.job_id == result.job_id,
                             m.OptimizerEvent.kind == "decision")
    assert len(decisions) == 4
    assert any(d.payload["accepted"] for d in decisions)
    assert store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id) > 0
    assert Path(result.report).is_file()
    # the best config is an instance of the user's context schema
    assert isinstance(result.best_config, lookup.Config)


def _write_jsonl(path: Path, examples) -> None:
    path.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in examples))


@pytest.mark.slow
def test_sigkill_then_resume_loses_no_accepted_change(tmp_path):
    examples = lookup.examples()
    _write_jsonl(tmp_path / "train.jsonl", examples[:12])
    _write_jsonl(tmp_path / "val.jsonl", examples[12:])
    (tmp_path / "settings.json").write_text(json.dumps(SETTINGS))
    env = {**os.environ, "OPTIMAS_LG_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    env.pop("OPTIMAS_LG_STORE", None)
    cmd = [sys.executable, "-m", "optimas_lg.cli.main", "optimize", "tests/graphs/lookup.py:builder",
           "--data", str(tmp_path / "train.jsonl"), "--val", str(tmp_path / "val.jsonl"),
           "--metric", "tests/graphs/lookup.py:metric", "--labels", "answer", "--max-iterations", "4",
           "--settings", str(tmp_path / "settings.json")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # kill right after the first proposal, before it is validated
        seen.append(line)
        if "LRF" in line or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert any("val" in line for line in seen), "".join(seen)

    from optimas_lg.store import Store
    with Store(f"sqlite:///{tmp_path / 'home' / 'optimas.db'}") as store:
        before = store.select(m.OptimizerEvent, m.OptimizerEvent.kind == "decision")
        assert store.get(m.Job, 1).status == "running"

    done = subprocess.run([*cmd[:4], "--resume", "1", "--json"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    with Store(f"sqlite:///{tmp_path / 'home' / 'optimas.db'}") as store:
        after = store.select(m.OptimizerEvent, m.OptimizerEvent.kind == "decision")
        baselines = store.select(m.OptimizerEvent, m.OptimizerEvent.kind == "evaluation")
        assert store.get(m.Job, 1).status == "done", done.stderr[-3000:]
    # decisions made before the kill are kept and not redone; the loop went on to the end
    assert [d.iteration for d in after[: len(before)]] == [d.iteration for d in before]
    assert sorted(d.iteration for d in after) == [1, 2, 3, 4]
    assert sum(1 for e in baselines if e.payload["label"] == "baseline") == 1
    assert result["val_after"] >= result["val_before"]


def test_system_run_budget_holds_inside_pair_collection(store):
    examples = lookup.examples()
    train, val = examples[:12], examples[12:]
    limit = 50  # baseline (8 val runs) + collect (12) leave 30 for the pairs step, which alone would take 40
    result = optimize(lookup.builder, train, lookup.metric, valset=val, store=store, config=_config(),
                      max_iterations=4, patience=None, max_system_runs=limit)
    runs = store.select(m.Run, m.Run.job_id == result.job_id)
    rollouts = [r for r in runs if r.purpose == "rollout"]
    assert 0 < len(rollouts) <= limit - len(val) - len(train)  # the pairs step stayed inside what was left
    # the budget is checked between steps: only the one validation after the pairs step runs over
    assert len(runs) <= limit + len(val)
    assert "system runs" in (result.stop_reason or "")
    assert store.count(m.PreferencePairRow, m.PreferencePairRow.job_id == result.job_id) > 0


def test_unknown_settings_are_named_in_the_error():
    with pytest.raises(SettingsError, match=r"unknown gate settings \['prune'\]"):
        OptimizeConfig.from_dict({**SETTINGS, "gate": {"min_examples": 5, "prune": True}})
    with pytest.raises(SettingsError, match=r"unknown optimize settings \['speed'\]"):
        OptimizeConfig.from_dict({"speed": 2})
    assert OptimizeConfig.from_dict(_config().to_dict()) == _config()

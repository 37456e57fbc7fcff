"""``optimize`` on the order-support agent of issue 13 (async triage on a chat model,
MessagesState, pydantic context, a subgraph node with two numeric knobs, a node the
defaults never reach), with a fake chat model and a tiny budget.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

import optimas_lg
from optimas_lg.errors import OptimasError
from optimas_lg.execution.runner import run_examples
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.lrf.collect import stored_pairs
from optimas_lg.proposers import ALL_NODES
from optimas_lg.store import Store
from optimas_lg.store import models as m
from tests.graphs import orders

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 1, "max_tokens": 96, "progress": False},
            "pairs_plan_accuracy": None,
            "pairs": {"samples": 3, "calls_per_node": 4}, "adapt_examples": 4,
            "proposers": {"int": {"objective": "lrf"}}}  # the fake model's runs are cheap: rank with the LRF anyway


def _optimize(store, kinds: list[str], iterations: int = 2) -> optimas_lg.Result:
    examples = orders.examples(30)
    config = OptimizeConfig.from_dict({**SETTINGS, "kinds": kinds})
    return optimas_lg.optimize(orders.graph, examples[:12], orders.resolved, valset=examples[12:24],
                               testset=examples[24:], store=store, settings=config, max_iterations=iterations,
                               patience=None)


def test_the_support_agent_optimizes_its_subgraph_knobs(store, capfd):
    """Async triage runs inside the loop's checkpointed graph, MessagesState pairs train the LRF,
    and the subgraph node's two numeric knobs move together to their best values."""
    result = _optimize(store, ["int"])
    out, err = capfd.readouterr()
    assert "baseline" in out + err and "Loading weights" not in err  # progress by default, no loading bars
    runs = store.select(m.Run, m.Run.job_id == result.job_id)
    assert runs and all(r.status == "done" for r in runs), next(r.error for r in runs if r.error)
    assert result.val_before == pytest.approx(1 / 12)
    assert result.val_after == pytest.approx(6 / 12) and result.test_after > result.test_before
    assert (result.best_knobs["history_window"], result.best_knobs["match_slack"]) >= (3, 2)
    assert isinstance(result.best_config, orders.SupportConfig)
    pairs = stored_pairs(store, result.job_id)
    assert pairs and all(isinstance(p.inputs["messages"][0], HumanMessage) for p in pairs)
    (trained, *_) = store.select(m.OptimizerEvent, m.OptimizerEvent.job_id == result.job_id,
                                 m.OptimizerEvent.kind == "lrf")
    assert set(trained.payload["train_accuracy"]) >= {p.node for p in pairs}  # what progress lists as n=0


def test_a_node_the_defaults_never_reach_is_skipped_not_fatal(store, capfd):
    """refund_desk has knobs but no recorded call under the defaults (the fake triage model never
    says refund): the round skips it, records that and says so in progress and report."""
    result = _optimize(store, ["choice", "int"], iterations=1)  # seed 0 drew refund_desk first
    assert store.get(m.Job, result.job_id).status == "done"
    (skipped,) = store.select(m.OptimizerEvent, m.OptimizerEvent.job_id == result.job_id,
                              m.OptimizerEvent.kind == "skipped")
    assert skipped.iteration == 1 and skipped.payload["nodes"] == ["refund_desk"]
    assert "skipped refund_desk (no recorded call under the current knobs)" in capfd.readouterr().err
    assert "| 1 | `refund_desk` | no recorded call under the current knobs |" in Path(result.report).read_text()
    assert result.val_after >= result.val_before
    (decision,) = store.select(m.OptimizerEvent, m.OptimizerEvent.job_id == result.job_id,
                               m.OptimizerEvent.kind == "decision")
    assert decision.node == ALL_NODES  # the system round, over the reached nodes' knobs only
    (proposal,) = store.select(m.OptimizerEvent, m.OptimizerEvent.job_id == result.job_id,
                               m.OptimizerEvent.kind == "proposal")
    assert "refund_policy" not in proposal.payload["details"]["searched"]


class Broken(orders.FakeTriageChat):
    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("model server unreachable")


def test_a_baseline_where_every_run_failed_stops_the_job_with_the_error(store, monkeypatch):
    monkeypatch.setattr(orders, "MODEL", Broken())
    with pytest.raises(OptimasError, match="model server unreachable"):
        _optimize(store, ["int"])
    (job,) = store.select(m.Job)
    assert job.status == "failed"


def _write_jsonl(path: Path, examples: list) -> None:
    path.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in examples))


@pytest.mark.slow  # a CLI subprocess
def test_ctrl_c_in_optimize_says_how_to_resume(tmp_path):
    examples = orders.examples(30)
    _write_jsonl(tmp_path / "train.jsonl", examples[:12])
    _write_jsonl(tmp_path / "val.jsonl", examples[12:24])
    (tmp_path / "settings.json").write_text(json.dumps({**SETTINGS, "kinds": ["int"]}))
    env = {**os.environ, "OPTIMAS_LG_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO),
           "PYTHONUNBUFFERED": "1"}
    env.pop("OPTIMAS_LG_STORE", None)
    cmd = [sys.executable, "-m", "optimas_lg.cli.main", "optimize", "tests/graphs/orders.py:graph",
           "--data", str(tmp_path / "train.jsonl"), "--val", str(tmp_path / "val.jsonl"),
           "--metric", "tests/graphs/orders.py:resolved", "--labels", "expect", "--max-iterations", "2",
           "--settings", str(tmp_path / "settings.json")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # Ctrl-C once the baseline is scored
        seen.append(line)
        if "baseline" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode != 0
    assert "--resume 1" in out and "Traceback" not in out, out
    with Store(f"sqlite:///{tmp_path / 'home' / 'optimas.db'}") as store:
        assert store.get(m.Job, 1).status == "interrupted"


@pytest.mark.slow
def test_the_support_agent_on_the_real_local_model(store, monkeypatch):
    """The triage node on SmolLM2 through ``chat_model`` (async, through the model server)."""
    monkeypatch.setattr(orders, "MODEL", optimas_lg.chat_model("local/smollm2-135m", max_tokens=8))
    system = optimas_lg.System.load(orders.graph)
    examples = orders.examples(8)
    for _ in range(2):  # a second batch reuses the model's async client
        summary = run_examples(system, examples, orders.resolved, {}, store, concurrency=4, progress=False)
        assert summary.n_failed == 0, summary.results[0].error
    assert summary.n_llm_calls == len(examples) and summary.completion_tokens > 0
    assert isinstance(summary.mean, float)

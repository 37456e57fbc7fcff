"""kill -9 at every step of the optimizer loop, then ``--resume``: the job ends exactly
where an uninterrupted one does (knobs, scores, decisions, config versions, events) and
counts exactly the system runs an uninterrupted job counts.

One job is killed at each point in turn: every resume is itself killed at the next
point, and only the last one finishes. The kill points are the end of each step (its
records written, its checkpoint not) and the start of some (the previous step's
checkpoint possibly still being written).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimas_lg.loop.budget import Spent
from optimas_lg.store import Store
from optimas_lg.store import models as m
from tests.reliability.conftest import cli_env, optimize_args
from tests.reliability.harness import KillAt, Outcome, cli

pytestmark = pytest.mark.reliability

STEPS = ["start", "baseline", "collect", "pairs", "train_lrf", "pick_node", "propose", "validate", "check_stop",
         "adapt", "final"]
KILLS = [KillAt("start"), KillAt("baseline"), KillAt("collect"), KillAt("pairs"), KillAt("train_lrf"),
         KillAt("pick_node", "before"), KillAt("pick_node"), KillAt("propose"), KillAt("validate", "before"),
         KillAt("validate"), KillAt("check_stop"), KillAt("adapt", "before"), KillAt("adapt"),
         KillAt("final", "before"), KillAt("final")]
LRF_NUMBERS = ("accuracy", "train_accuracy", "train_loss")  # float noise of a resumed trainer, not the outcome


def _outcome(result: dict) -> dict:
    """What must not change: knobs, scores, stop reason, what was spent but time, and every
    record but the LRF's float metrics."""
    history = [{k: v for k, v in r.items() if k not in LRF_NUMBERS} for r in result["history"]]
    spent = {k: v for k, v in result["spent"].items() if k != "seconds"}
    return {**{k: v for k, v in result.items() if k != "report"}, "history": history, "spent": spent}


def _store_facts(home: Path) -> dict:
    """The job as the store holds it: status, config versions, events, spend, pairs, LRF checkpoints."""
    with Store(f"sqlite:///{home / 'optimas.db'}") as store:
        events = store.select(m.OptimizerEvent)
        return {
            "status": store.get(m.Job, 1).status,
            "configs": [(c.id, c.parent_id, c.values, c.note) for c in store.select(m.ConfigVersion)],
            "events": [(e.kind, e.iteration, e.node) for e in events],
            "evaluations": [e.payload for e in events if e.kind == "evaluation"],
            "decisions": [e.payload for e in events if e.kind == "decision"],
            "spent": [(e.iteration, Spent.from_json(e.payload).system_runs, Spent.from_json(e.payload).llm_tokens)
                      for e in events if e.kind == "budget"],
            "pairs": store.count(m.PreferencePairRow),
            "lrf_checkpoints": [(c.id, Path(c.path).name) for c in store.select(m.LRFCheckpoint)],
        }


def _final_runs(outcome: Outcome) -> str:
    """The budget shown on the last progress line (``final ... [runs N · tokens T · ...]``)."""
    line = next(x for x in reversed(outcome.stderr.splitlines()) if x.startswith("final"))
    return line.split("[runs ")[1].split(" ·")[:2]


@pytest.fixture(scope="module")
def reference(lookup_files, tmp_path_factory):
    """One uninterrupted job, shared by every kill case."""
    home = tmp_path_factory.mktemp("reference")
    done = cli(optimize_args(lookup_files), cli_env(home), home / "out")
    assert done.code == 0, done.stderr
    return done, home


def test_the_kill_points_cover_every_loop_step():
    from optimas_lg.loop.graph import build_optimizer_graph

    assert set(build_optimizer_graph().nodes) == set(STEPS) == {k.step for k in KILLS}


def test_kill_9_at_every_step_then_resume_gives_the_uninterrupted_result(lookup_files, reference, tmp_path):
    ref, ref_home = reference
    expected = json.loads(ref.stdout)
    accepted = [d["accepted"] for d in expected["history"] if d["record"] == "Decision"]
    assert False in accepted and True in accepted[1:], \
        f"the reference job must reject a change and accept one after its first round, so that every kill point " \
        f"is reached in order; its decisions: {accepted}"
    home, env = tmp_path / "home", cli_env(tmp_path / "home")
    args = optimize_args(lookup_files)
    survived = []
    for i, kill in enumerate(KILLS):
        killed = cli(args if i == 0 else ["optimize", "--resume", "1", "--json"], env, tmp_path / f"run{i}", kill)
        assert killed.killed, f"{kill}: the process was not killed there (exit {killed.code}):\n{killed.stderr}"
        with Store(f"sqlite:///{home / 'optimas.db'}") as store:  # opening it closes the orphaned job
            assert store.get(m.Job, 1).status == ("done" if kill == KillAt("final") else "interrupted"), kill
        survived.append(str(kill))
    done = cli(["optimize", "--resume", "1", "--json"], env, tmp_path / "last")
    assert done.code == 0, f"resuming after kills at {survived}:\n{done.stderr}"
    assert _outcome(json.loads(done.stdout)) == _outcome(expected)
    assert _store_facts(home) == _store_facts(ref_home)
    assert _final_runs(done) == _final_runs(ref)

"""The system round (``loop.system_round``): the first round searches the choice and numeric
knobs of every node together on the global metric, behind the gate. ``shapes.two_key_lock``
opens only when both nodes' keys turn together, so a round on one node cannot open it."""

from __future__ import annotations

import io

import optimas_lg
from optimas_lg.data import Example
from optimas_lg.graph.system import System
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.loop.progress import printer
from optimas_lg.loop.system_round import affords_system_round, system_search
from optimas_lg.proposers import ALL_NODES, JointProposer, build_proposers
from optimas_lg.store import queries
from tests.graphs import shapes

EXAMPLES = [Example(key=f"e{i}", inputs={"n": 0}) for i in range(12)]


def _optimize(store, out: io.StringIO | None = None, max_system_runs: int | None = None, **settings):
    config = OptimizeConfig.from_dict({"gate": {"min_examples": 3}, "kinds": ["int"], "global_examples": 2,
                                       **settings})
    return optimas_lg.optimize(shapes.two_key_lock(), EXAMPLES[:6], shapes.lock_opened, valset=EXAMPLES[6:],
                               store=store, settings=config, max_iterations=1, patience=None,
                               max_system_runs=max_system_runs, progress=printer(out) if out else False)


def test_the_system_round_turns_keys_of_two_nodes_together(store):
    out = io.StringIO()
    result = _optimize(store, out)
    [decision] = result.decisions
    assert decision.node == ALL_NODES and decision.accepted, decision
    assert result.best_knobs == {"first": 2, "second": 1}
    assert (result.val_before, result.val_after) == (0.0, 1.0)
    [proposal] = queries.job_events(store, result.job_id, "proposal")
    assert proposal.payload["details"]["objective"] == "global"
    assert proposal.payload["details"]["searched"] == ["first", "second"]
    lines = out.getvalue().splitlines()
    assert any(line.startswith("[1] * picked: first round: the choice and numeric knobs of every node")
               for line in lines), lines


def test_without_it_a_round_on_one_node_cannot_open_the_lock(store):
    result = _optimize(store, system_round=False)
    [decision] = result.decisions
    assert decision.node in ("turn_first", "turn_second") and not decision.accepted
    assert result.best_knobs == {"first": 0, "second": 0}


def test_a_first_round_that_cannot_pay_two_trials_goes_to_a_node(store):
    # 6 val + 6 collect runs, then 8 left: the round's share (8 - 6 for its validation) is
    # 2 runs, one trial of 2 examples, so the loop starts with a node's round instead
    result = _optimize(store, max_system_runs=20)
    assert result.decisions[0].node in ("turn_first", "turn_second")


def test_the_system_round_takes_the_knobs_of_joint_proposers_not_set_to_the_lrf():
    knobs = list(System.load(shapes.two_key_lock).knobs.values())
    proposer, searched = system_search(knobs, build_proposers({"int": {"n_trials": 5}}))
    assert isinstance(proposer, JointProposer)
    assert (proposer.config.objective, proposer.config.n_trials) == ("global", 5)
    assert [k.name for k in searched] == ["first", "second"]
    assert system_search(knobs, build_proposers({"int": {"objective": "lrf"}})) is None


def test_two_trials_are_the_least_a_system_round_is_worth():
    assert affords_system_round(None, 8)
    assert affords_system_round(16, 8) and not affords_system_round(15, 8)

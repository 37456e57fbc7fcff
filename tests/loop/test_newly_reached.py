"""A node an accepted change newly reaches, on some examples only, gets recorded training
inputs before the next round (``loop.nodes._reach_new_nodes``): ``shapes.odd_desk_graph``
sends odd numbers to ``odd_desk`` once ``route_odd`` is on, and the training set has one."""

from __future__ import annotations

import random

import optimas_lg
from optimas_lg.data import Example
from optimas_lg.loop.config import OptimizeConfig
from tests.graphs import shapes


def test_a_node_reached_after_a_change_gets_inputs_and_a_round(store):
    train = [Example(key=f"t{n}", inputs={"n": n}) for n in (0, 2, 4, 6, 8, 9)]  # one odd
    val = [Example(key=f"v{n}", inputs={"n": n}) for n in range(10, 16)]
    settings = OptimizeConfig.from_dict({"gate": {"min_examples": 3, "futility_at": None}, "kinds": ["choice", "int"],
                                         "global_examples": 6, "adapt_examples": 1})
    adapt_batch = random.Random(f"{settings.seed}:adapt:1").sample(train, 1)
    assert adapt_batch[0].inputs["n"] % 2 == 0, "the adapt batch holds the odd example: the test covers nothing"
    result = optimas_lg.optimize(shapes.odd_desk_graph(), train, shapes.desk_served, valset=val, store=store,
                                 settings=settings, max_iterations=3, patience=None, progress=False)
    kept = {d.node: d.changes for d in result.decisions if d.accepted}
    assert set(kept["*"]) == {"route_odd"} and result.best_knobs["route_odd"] == "yes"  # the system round
    assert "odd_desk" in kept and result.best_knobs["bonus"] == 2, result.decisions
    assert result.val_after == 1.0

"""A graph compiled with its own LangGraph store: every run starts from the store as it was
loaded, so a node that remembers answers there cannot make one run repeat another's."""

from __future__ import annotations

from optimas_lg.data import Example
from optimas_lg.execution.replay import rollout_from, run_node
from optimas_lg.execution.runner import run_examples
from optimas_lg.graph.system import System
from tests.graphs import shapes


def test_each_run_sees_the_loaded_store_and_none_of_another_runs_writes(store):
    graph = shapes.memo_store()
    system = System.load(graph)
    examples = [Example(f"e{n}", {"n": n, "log": []}, {}) for n in range(3)]
    outputs = {}
    for bonus in (0, 2, 2):
        summary = run_examples(system, examples, lambda e, o: 1.0, {"bonus": bonus}, store, progress=False)
        outputs.setdefault(bonus, []).append([(r.output["n"], r.output["log"][-1]) for r in summary.results])
    assert outputs[0] == [[(100, "computed"), (101, "computed"), (102, "computed")]]
    assert outputs[2][0] == outputs[2][1] == [(102, "computed"), (103, "computed"), (104, "computed")]
    assert graph.store.search(("memo",)) == []  # the graph's own store is as it was loaded


def test_a_node_run_alone_and_a_rollout_get_their_own_copy_too():
    system = System.load(shapes.memo_store())
    example = Example("e", {"n": 1, "log": []}, {})
    assert run_node(system, "remember", {"n": 1, "log": []}, {"bonus": 1}) == {"n": 102, "log": ["computed"]}
    assert run_node(system, "remember", {"n": 1, "log": []}, {"bonus": 3}) == {"n": 104, "log": ["computed"]}
    for bonus in (4, 4):
        (rollout,) = rollout_from(system, "prepare", {"n": 1, "log": []}, {"log": ["prepared"]}, example,
                                  lambda e, o: 1.0, {"bonus": bonus}, 1)
        assert rollout.error is None and rollout.final_output == {"n": 105, "log": ["prepared", "computed"]}

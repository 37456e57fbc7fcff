"""Recording overhead: a 10-node graph whose nodes each do ~1 ms of CPU work, run with
and without the node-call recorder (same graph, same inputs, one run at a time).

Run: .venv/bin/python bench/record_overhead.py   (writes docs/bench/record_overhead.json)
Goal: recorded / plain wall time <= 1.05.
"""

from __future__ import annotations

import json
import operator
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from optimas_lg.data import Example
from optimas_lg.execution.runner import Invocation, run_one
from optimas_lg.graph.system import System
from optimas_lg.store import Store

NODES = 10
WORK_S = 0.001
RUNS = 300
GOAL = 1.05


class State(TypedDict, total=False):
    question: str
    notes: Annotated[list[str], operator.add]
    answer: str


def make_node(i: int) -> Any:
    def node(state: State) -> dict[str, Any]:
        end = time.perf_counter() + WORK_S  # ~1 ms of CPU work that holds the GIL, like real Python code
        while time.perf_counter() < end:
            pass
        return {"notes": [f"node {i} saw {state['question'][:20]}"], "answer": f"after {i}"}

    return node


def build() -> StateGraph:
    g = StateGraph(State)
    for i in range(NODES):
        g.add_node(f"n{i}", make_node(i))
    g.add_edge(START, "n0")
    for i in range(NODES - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{NODES - 1}", END)
    return g


class _DiscardingStore:
    """Stands in for the store to separate the recorder's own cost from the SQLite writer's."""

    class writer:  # noqa: N801 - mirrors Store.writer
        @staticmethod
        def put(table: Any, row: dict[str, Any]) -> None:
            pass


def main() -> None:
    system = System.load(build())
    plain = system.builder.compile()
    recorded = system.compile()
    inputs = {"question": "what is the capital of france and why is it paris?", "notes": []}
    example = Example("bench", inputs)

    def metric(example: Example, output: Any) -> float:
        return 1.0

    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/bench.db")
        store.writer  # noqa: B018 - start the writer thread outside the timed region
        times: dict[str, list[float]] = {"plain": [], "recorded": [], "recorder_only": []}
        for i in range(RUNS + 20):  # interleaved, so drift hits both sides alike; 20 warm-up rounds
            t0 = time.perf_counter()
            plain.invoke(inputs, {})
            t1 = time.perf_counter()
            result = run_one(system, recorded, Invocation(example, {}, inputs, run_id=str(uuid.uuid4())), metric,
                             store)
            t2 = time.perf_counter()
            run_one(system, recorded, Invocation(example, {}, inputs), metric, _DiscardingStore())  # type: ignore[arg-type]
            t3 = time.perf_counter()
            assert result.ok, result.error
            if i >= 20:
                times["plain"].append(t1 - t0)
                times["recorded"].append(t2 - t1)
                times["recorder_only"].append(t3 - t2)
        store.writer.flush()
        store.close()
    plain_s, recorded_s = statistics.median(times["plain"]), statistics.median(times["recorded"])
    result = {
        "nodes": NODES, "work_per_node_ms": WORK_S * 1000, "runs": RUNS,
        "plain_median_ms": round(plain_s * 1000, 3), "recorded_median_ms": round(recorded_s * 1000, 3),
        "ratio": round(recorded_s / plain_s, 4), "goal": GOAL,
        "ratio_without_store_writes": round(statistics.median(times["recorder_only"]) / plain_s, 4),
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "plain_mean_ms": round(statistics.mean(times["plain"]) * 1000, 3),
        "recorded_mean_ms": round(statistics.mean(times["recorded"]) * 1000, 3),
    }
    out = Path(__file__).resolve().parent.parent / "docs" / "bench" / "record_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"recording overhead ratio {result['ratio']:.3f} (goal <= {GOAL})")


if __name__ == "__main__":
    main()

"""What a cell spends: system runs (counted where the system is run) and LLM tokens
(counted at the model server, per model, so the task models' and the proposer's are apart)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from optimas_lg.data import Example, Metric
from optimas_lg.graph.system import System

CONCURRENCY = 8  # the server batches up to 8 requests; every method runs 8 examples at a time


class Tally:
    """Thread-safe running totals by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, dict[str, int]] = {}

    def add(self, key: str, **amounts: int) -> None:
        with self._lock:
            row = self.values.setdefault(key, {})
            for name, n in amounts.items():
                row[name] = row.get(name, 0) + int(n or 0)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(v) for k, v in self.values.items()}


def count_tokens_at(handle: Any, tally: Tally) -> None:
    """Count prompt/completion tokens of every request the in-process server ``handle``
    answers, by model name, whoever sent it (the system, a proposer, DSPy, GEPA)."""
    pool = handle.pool
    submit = pool.submit

    def counted(model: str, job: Any) -> Any:
        future = submit(model, job)

        def done(f: Any) -> None:
            if not f.cancelled() and f.exception() is None:
                result = f.result()
                tally.add(model.split("@")[0], prompt=result.prompt_tokens,
                          completion=sum(c.completion_tokens for c in result.choices), requests=1)

        future.add_done_callback(done)
        return future

    pool.submit = counted


def split_tokens(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
                 proposer_model: str) -> dict[str, dict[str, int]]:
    """Tokens spent between two snapshots: the proposer model's apart from the system's."""
    out = {"system": {"prompt": 0, "completion": 0, "requests": 0},
           "proposer": {"prompt": 0, "completion": 0, "requests": 0}}
    for model, row in after.items():
        side = out["proposer" if model == proposer_model else "system"]
        for name, n in row.items():
            side[name] += n - before.get(model, {}).get(name, 0)
    for side in out.values():
        side["total"] = side["prompt"] + side["completion"]
    return out


class Runner:
    """Runs the compiled graph on examples under knob values, counting every run."""

    def __init__(self, system: System, metric: Metric) -> None:
        self.system = system
        self.metric = metric
        self.graph = system.builder.compile()  # the graph as its users compile it
        self.runs = 0
        self._lock = threading.Lock()

    def invoke(self, example: Example, knobs: dict[str, Any]) -> dict[str, Any]:
        """One system run (counted); the final state."""
        with self._lock:
            self.runs += 1
        return self.graph.invoke(example.inputs, self.system.config(knobs), context=self.system.context(knobs))

    def score(self, example: Example, knobs: dict[str, Any]) -> float:
        """One run's metric; a run that raises scores 0 (it is still a run)."""
        try:
            return float(self.metric(example, self.invoke(example, knobs)))
        except Exception:  # noqa: BLE001 - a failing run is a zero, as in every method's own evaluator
            return 0.0

    def scores(self, examples: Sequence[Example], knobs: dict[str, Any]) -> list[float]:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            return list(pool.map(lambda e: self.score(e, knobs), examples))

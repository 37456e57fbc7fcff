"""The systems a cell can optimize: each one's graph, metric, splits and the models it calls."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optimas_lg.data import Example, Metric
from optimas_lg.graph.system import System

TASK_MODEL = "local/smollm2-135m"
PROPOSER_MODEL = "local/qwen2.5-coder-0.5b"
"""The one proposer / reflection LM of every method that writes prompts (the strongest model served here)."""


@dataclass(frozen=True)
class SuiteSystem:
    """A system of the suite: ``module`` exports ``builder``, ``metric`` and ``load_split``
    (or, for a test graph, ``examples()`` split here); ``sizes`` are (train, val, test).
    ``loop_settings`` are what the system's size asks of every loop method (a test graph's
    6 validation examples need a lower ``gate.min_examples``), under the method's own."""

    name: str
    module: str
    sizes: tuple[int, int, int]
    models: tuple[str, ...] = (TASK_MODEL,)
    loop_settings: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        return importlib.import_module(self.module)

    def system(self) -> System:
        return System.load(self.load().builder)

    @property
    def metric(self) -> Metric:
        return self.load().metric

    def splits(self) -> dict[str, list[Example]]:
        """train / val / test examples, the same for every method and seed."""
        mod = self.load()
        n_train, n_val, n_test = self.sizes
        if hasattr(mod, "load_split"):
            loaders: dict[str, Callable[[], list[Example]]] = {
                name: (lambda name=name: list(mod.load_split(name))) for name in ("train", "val", "test")}
            return {"train": loaders["train"]()[:n_train], "val": loaders["val"]()[:n_val],
                    "test": loaders["test"]()[:n_test]}
        examples = list(mod.examples())
        return {"train": examples[:n_train], "val": examples[n_train:n_train + n_val],
                "test": examples[n_train + n_val:n_train + n_val + n_test]}


SYSTEMS: dict[str, SuiteSystem] = {s.name: s for s in [
    SuiteSystem("offline_qa", "examples.offline_qa", (36, 30, 60)),
    SuiteSystem("stark", "examples.stark", (36, 30, 60), models=()),
    SuiteSystem("pubmedqa", "examples.pubmedqa", (36, 30, 60)),
    SuiteSystem("hotpotqa", "examples.hotpotqa", (36, 30, 60)),
    SuiteSystem("amazon", "examples.amazon", (36, 30, 60)),
    SuiteSystem("humaneval", "examples.humaneval", (36, 30, 60)),
    SuiteSystem("lookup", "tests.graphs.lookup", (8, 6, 6), models=(),  # the harness's own tests: no LLM
                loop_settings={"gate": {"min_examples": 5}}),
]}

"""The optimizer loop for LangGraph Studio, preset to optimize this example: the
assistant's configuration starts with the agent, metric and data files filled in."""

from dataclasses import dataclass, field

from optimas_lg.loop.graph import build_optimizer_graph
from optimas_lg.loop.state import LoopContext


@dataclass
class OfflineQALoopContext(LoopContext):
    """``LoopContext`` with this example's target, metric and splits as defaults."""

    target: str | None = "examples/offline_qa/agent.py:builder"
    metric: str | None = "examples/offline_qa/metric.py:metric"
    train: str | None = "examples/offline_qa/data/train.jsonl"
    val: str | None = "examples/offline_qa/data/val.jsonl"
    test: str | None = "examples/offline_qa/data/test.jsonl"
    inputs: list[str] | None = field(default_factory=lambda: ["question"])
    labels: list[str] | None = field(default_factory=lambda: ["answer", "hops", "support"])


graph = build_optimizer_graph(OfflineQALoopContext).compile()

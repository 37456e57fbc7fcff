"""BigCodeBench-style code generation (paper system 5) on HumanEval data: write candidate
programs, gather tests, run them in a sandbox, select and repair. Metric: pass@1 on the
hidden tests.

Run ``python -m examples.humaneval --split val --limit 20`` to score the default config.
"""

from examples.humaneval.agent import AgentConfig, State, builder, graph
from examples.humaneval.data import load_split
from examples.humaneval.metric import metric, show

__all__ = ["AgentConfig", "State", "builder", "graph", "load_split", "metric", "show"]

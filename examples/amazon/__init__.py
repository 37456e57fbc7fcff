"""Amazon next-item selection (paper system 1): a session analyzer and a candidate profiler
on the local model (each with a LoRA knob), then a decider names one of 4 candidates.
Knobs: two LoRA adapters, the decider's prompt and model; metric: accuracy.
Fixes and measured headroom: docs/examples/amazon.md.

Run ``python -m examples.amazon --split val --limit 20`` to score the unoptimized system.
"""

from examples.amazon.agent import AgentConfig, State, builder, graph
from examples.amazon.data import DATA_FILE, load_split
from examples.amazon.metric import metric, parse_choice

__all__ = ["AgentConfig", "DATA_FILE", "State", "builder", "graph", "load_split", "metric", "parse_choice"]

"""PubMedQA (paper system 2): a context analyst condenses the abstract, a solver answers
yes, no or maybe. Knobs: each node's prompt and model; metric: accuracy.

Run ``python -m examples.pubmedqa --split val --limit 20`` to score the unoptimized system.
"""

from examples.pubmedqa.agent import AgentConfig, State, builder, graph, model_options
from examples.pubmedqa.data import DATA_FILE, load_split
from examples.pubmedqa.metric import metric, parse_decision

__all__ = ["AgentConfig", "DATA_FILE", "State", "builder", "graph", "load_split", "metric", "model_options",
           "parse_decision"]

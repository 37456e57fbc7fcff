"""HotpotQA (paper system 4): rewrite the question as a query, retrieve the top-k of the
question's own 10 paragraphs, extract evidence, answer. Knobs: three prompts and k;
metric: answer token F1.

Run ``python -m examples.hotpotqa --split val --limit 20`` to score the unoptimized system.
"""

from examples.hotpotqa.agent import AgentConfig, State, builder, graph
from examples.hotpotqa.data import DATA_FILE, load_split
from examples.hotpotqa.metric import metric, token_f1
from examples.hotpotqa.retrieve import top_k_paragraphs

__all__ = ["AgentConfig", "DATA_FILE", "State", "builder", "graph", "load_split", "metric", "token_f1",
           "top_k_paragraphs"]

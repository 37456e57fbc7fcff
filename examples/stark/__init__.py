"""STaRK-style semi-structured retrieval (paper system 3) on a generated knowledge base:
lexical, dense and relation-following retrievers, fused and reranked by numeric knobs.
Metric: MRR (hit@k reported too). No LLM, so a run takes milliseconds.

Run ``python -m examples.stark --split val`` to score the default config.
"""

from examples.stark.agent import AgentConfig, State, builder, graph, load_split
from examples.stark.metric import hit_at_k, metric, show

__all__ = ["AgentConfig", "State", "builder", "graph", "hit_at_k", "load_split", "metric", "show"]

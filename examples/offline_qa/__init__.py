"""The offline default example: multi-hop questions over a generated knowledge base.

``agent`` holds the graph and its knobs, ``metric`` the score, ``generate`` the seeded
data generator, ``retriever`` the BM25 search the ``retrieve`` node uses.
"""

from examples.offline_qa.agent import AgentConfig, builder, graph, load_split
from examples.offline_qa.metric import metric

__all__ = ["AgentConfig", "builder", "graph", "load_split", "metric"]

"""Entry point for ``langgraph dev`` / LangGraph Studio: the optimizer loop compiled
without a checkpointer (the server brings its own). The context fields (target,
metric, data files, store, settings) are the assistant's editable configuration; an
example can register the same loop with its own defaults (``examples/offline_qa/studio.py``)."""

from optimas_lg.loop.graph import build_optimizer_graph

graph = build_optimizer_graph().compile()

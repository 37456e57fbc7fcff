"""Entry point for ``langgraph dev`` / LangGraph Studio: the optimizer loop compiled
without a checkpointer (the server brings its own). The context fields (target,
metric, data files, settings) are the assistant's editable configuration; the
defaults optimize the offline example."""

from optimas_lg.loop.graph import build_optimizer_graph

graph = build_optimizer_graph().compile()

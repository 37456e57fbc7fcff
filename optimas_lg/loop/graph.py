"""The optimizer loop as a LangGraph ``StateGraph`` (resumable with a checkpointer,
inspectable in LangGraph Studio).

    start → baseline → collect → pairs → train_lrf → pick_node → propose → validate
                                                   ↑                  (accepted) ↓  ↓ (rejected / no change)
                                                   └── pick_node ← check_stop ← adapt
    check_stop → pick_node | final → END   (pick_node → final too, when the first steps used a limit up)

The state holds ids, scores and records (JSON); the user's system, data and the local
reward model live in the job's ``Workspace``, which reaches the nodes through the run
context (``LoopContext``).
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from optimas_lg.loop import nodes
from optimas_lg.loop.state import LoopContext, LoopState


def build_optimizer_graph(context_schema: type[LoopContext] = LoopContext) -> StateGraph:
    """The optimizer loop as an uncompiled ``StateGraph`` (compile it with a checkpointer
    to make it resumable; ``langgraph dev`` supplies its own). ``context_schema`` may be a
    ``LoopContext`` subclass whose defaults name a particular job's pieces (as the
    examples' Studio entries do)."""
    builder = StateGraph(LoopState, context_schema=context_schema)
    builder.add_node("start", nodes.start)
    for fn in (nodes.baseline, nodes.collect, nodes.pairs, nodes.train_lrf, nodes.pick_node, nodes.propose,
               nodes.validate, nodes.adapt, nodes.check_stop, nodes.final):
        builder.add_node(fn.__name__, nodes.accounted(fn))
    builder.add_edge(START, "start")
    builder.add_edge("start", "baseline")
    builder.add_edge("baseline", "collect")
    builder.add_edge("collect", "pairs")
    builder.add_edge("pairs", "train_lrf")
    builder.add_edge("train_lrf", "pick_node")
    builder.add_conditional_edges("pick_node", nodes.route_round)
    builder.add_edge("propose", "validate")
    builder.add_conditional_edges("validate", nodes.route_decision)
    builder.add_edge("adapt", "check_stop")
    builder.add_conditional_edges("check_stop", nodes.route_stop)
    builder.add_edge("final", END)
    return builder

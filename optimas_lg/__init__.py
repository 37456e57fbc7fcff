"""optimas-lg: optimize LangGraph agents with globally aligned local rewards (Optimas)."""

import os

# torch's OpenMP threads busy-wait by default; on a shared 2-core machine that collapses
# throughput (seen: 0.7 vs 6.7 tok/s). Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from optimas_lg.api import Result, optimize  # noqa: E402
from optimas_lg.data import Example, load_examples, make_examples  # noqa: E402
from optimas_lg.execution.server import Server  # noqa: E402
from optimas_lg.graph.knobs import Choice, Demos, FloatRange, IntRange, LoRA, Prompt  # noqa: E402
from optimas_lg.graph.system import System, SystemGraph, inspect  # noqa: E402
from optimas_lg.llm import chat_model  # noqa: E402
from optimas_lg.loop.config import OptimizeConfig  # noqa: E402
from optimas_lg.publishing import Published, publish  # noqa: E402

__all__ = ["Choice", "Demos", "Example", "FloatRange", "IntRange", "LoRA", "OptimizeConfig", "Prompt", "Published",
           "Result", "Server", "System", "SystemGraph", "chat_model", "inspect", "load_examples", "make_examples",
           "optimize", "publish"]

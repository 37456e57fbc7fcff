"""The user's graph: knobs declared on its context schema, loading it from a target
name, and introspecting its ``StateGraph`` into the DAG the optimizer works on."""

from optimas_lg.graph.knobs import Choice, FloatRange, IntRange, KnobSpec, LoRA, Prompt
from optimas_lg.graph.system import System, SystemGraph, inspect
from optimas_lg.graph.target import load_target

__all__ = ["Choice", "FloatRange", "IntRange", "KnobSpec", "LoRA", "Prompt", "System", "SystemGraph", "inspect",
           "load_target"]

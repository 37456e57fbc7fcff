"""optimas-lg: optimize LangGraph agents with globally aligned local rewards (Optimas)."""

from optimas_lg.knobs import Choice, FloatRange, IntRange, LoRA, Prompt
from optimas_lg.system import System, SystemGraph, inspect

__all__ = ["Choice", "FloatRange", "IntRange", "LoRA", "Prompt", "System", "SystemGraph", "inspect"]

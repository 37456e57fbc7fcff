"""Render a ``Demos`` knob's value the way LangChain prompts take few-shot examples:
as earlier human/AI turns before the real question, or as one block of text.

A node reads its demos from ``runtime.context`` and puts them in its prompt::

    messages = [SystemMessage(instruction), *demo_messages(ctx.answer_demos, "question", "answer"),
                HumanMessage(state["question"])]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage


def _side(values: dict[str, Any], key: str | None) -> str:
    """One side of a demo as text: the named key, the only key, or ``key: value`` lines."""
    if key is not None:
        return str(values.get(key, ""))
    if len(values) == 1:
        return str(next(iter(values.values())))
    return "\n".join(f"{k}: {v}" for k, v in values.items())


def demo_messages(demos: Sequence[dict[str, Any]], input_key: str | None = None,
                  output_key: str | None = None) -> list[BaseMessage]:
    """Each demo as a human turn (its input) followed by an AI turn (its output)."""
    out: list[BaseMessage] = []
    for demo in demos:
        out += [HumanMessage(_side(demo["input"], input_key)), AIMessage(_side(demo["output"], output_key))]
    return out


def demo_text(demos: Sequence[dict[str, Any]], input_key: str | None = None, output_key: str | None = None,
              input_label: str = "Input", output_label: str = "Output") -> str:
    """The demos as one text block (for a single-message or completion prompt); "" for none."""
    return "\n\n".join(f"{input_label}: {_side(d['input'], input_key)}\n"
                       f"{output_label}: {_side(d['output'], output_key)}" for d in demos)

"""Accuracy of the picked candidate, read robustly out of the decider's free text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from optimas_lg.data import Example

_NUMBER = re.compile(r"(?<![\w.])([1-4])(?!\w|\.\d)")
_WORD = re.compile(r"\w+")


def parse_choice(text: str | None, choices: Sequence[str]) -> int | None:
    """The 0-based index of the candidate ``text`` names: a quoted title, else the first
    standalone number 1-4, else the title sharing the most words (None on a tie or no overlap)."""
    text = (text or "").strip()
    lowered = text.lower()
    named = [i for i, title in enumerate(choices) if title.strip() and title.lower().strip() in lowered]
    if len(named) == 1:
        return named[0]
    if match := _NUMBER.search(text):
        return int(match.group(1)) - 1
    words = set(_WORD.findall(lowered))
    overlaps = [len(words & set(_WORD.findall(title.lower()))) for title in choices]
    best = max(overlaps, default=0)
    return overlaps.index(best) if best and overlaps.count(best) == 1 else None


def metric(example: Example, output: Mapping[str, Any]) -> float:
    """1.0 when ``output["answer"]`` names the right candidate, else 0.0."""
    return float(parse_choice(output.get("answer"), example.inputs["choices"]) == example.labels["answer"])

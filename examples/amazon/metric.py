"""Accuracy of the picked candidate, read robustly out of the decider's free text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from optimas_lg.data import Example

_LEADING_NUMBER = re.compile(r"\s*(?:(?:candidate|number|option|#)\s*)?([1-4])(?!\w|\.\d)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])([1-4])(?!\w|\.\d)")
_WORD = re.compile(r"[^\W\d_][\w'-]*")  # words with a letter first: "2" or "500mm" name no product
_COMMON = frozenset("a an and for in of on or the to with by from is it this that pack set".split())


def words(text: str) -> set[str]:
    """The words of ``text`` that can name a product: lower case, a letter first, not filler."""
    return set(_WORD.findall(text.lower())) - _COMMON


def parse_choice(text: str | None, choices: Sequence[str]) -> int | None:
    """The 0-based index of the candidate ``text`` names: a number 1-4 it starts with, else a
    title quoted whole, else the title sharing the most words with it, else the first standalone
    number 1-4 (None when nothing names one candidate).

    A reply that starts with a number ("3", "Candidate 2.", "1. JCB LED ...") picks by number; a
    reply that names the product ("the paint pens") picks by its words, so that a number inside
    a title ("Pack of 4") is not read as a pick.
    """
    text = (text or "").strip()
    if match := _LEADING_NUMBER.match(text):
        return int(match.group(1)) - 1
    lowered = text.lower()
    named = [i for i, title in enumerate(choices) if title.strip() and title.lower().strip() in lowered]
    if len(named) == 1:
        return named[0]
    named_words = words(lowered)
    overlaps = [len(named_words & words(title)) for title in choices]
    best = max(overlaps, default=0)
    if best and overlaps.count(best) == 1:
        return overlaps.index(best)
    return int(match.group(1)) - 1 if (match := _NUMBER.search(text)) else None


def metric(example: Example, output: Mapping[str, Any]) -> float:
    """1.0 when ``output["answer"]`` names the right candidate, else 0.0."""
    return float(parse_choice(output.get("answer"), example.inputs["choices"]) == example.labels["answer"])

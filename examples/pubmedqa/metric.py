"""Accuracy on the yes/no/maybe decision, read robustly out of free text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from optimas_lg.data import Example

_DECISION = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)


def parse_decision(text: str | None) -> str | None:
    """The first standalone yes, no or maybe in ``text`` (any case), else None."""
    match = _DECISION.search(text or "")
    return match.group(1).lower() if match else None


def metric(example: Example, output: Mapping[str, Any]) -> float:
    """1.0 when the decision in ``output["answer"]`` equals the label, else 0.0."""
    return float(parse_decision(output.get("answer")) == example.labels["answer"])

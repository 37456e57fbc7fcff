"""Answer token F1, normalized as in the official HotpotQA/SQuAD evaluation."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping
from typing import Any

from optimas_lg.data import Example

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CLOSED = {"yes", "no", "noanswer"}


def _tokens(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1; a yes/no answer scores only when it matches exactly."""
    pred, ref = _tokens(prediction), _tokens(gold)
    if " ".join(pred) in _CLOSED or " ".join(ref) in _CLOSED:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return float(pred == ref)
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def metric(example: Example, output: Mapping[str, Any]) -> float:
    """Token F1 of ``output["answer"]`` against the gold answer."""
    return token_f1(output.get("answer") or "", example.labels["answer"])

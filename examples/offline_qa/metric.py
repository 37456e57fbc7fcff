"""The example's metric: token F1 between the agent's answer and the gold answer.

F1 (as in SQuAD) gives partial credit for "Kirkon" against "Kirkon Lenvux" and charges
for every extra word, so a right answer buried in a sentence scores low: the answer's
format is part of what the knobs must get right.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from optimas_lg.data import Example

_ARTICLES = frozenset({"a", "an", "the"})


def normalize(text: str) -> list[str]:
    """Lower-cased words without punctuation or articles."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _ARTICLES]


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction), normalize(gold)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def metric(example: Example, output: Any) -> float:
    """F1 of ``output["answer"]`` (or of ``output`` itself when it is a string) against the gold answer."""
    answer = output.get("answer") if isinstance(output, dict) else output
    return token_f1(answer if isinstance(answer, str) else "", str(example["answer"]))

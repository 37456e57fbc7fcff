"""The retrieval graph: three retrievers in parallel, a fusion step, a rerank step.

``lexical``, ``dense`` and ``relational`` each propose entities for the question;
``fuse`` merges their lists (reciprocal rank fusion or a weighted sum of normalized
scores); ``rerank`` adds bonuses for the answer type the question asks for and for
links to the entities it names, and returns the final ranking. No LLM is called.

The defaults are what one would write first: every retriever weighted the same, RRF
with the customary k = 60, 20 results per retriever, two hops of relations, and small
bonuses. Which weights suit a knowledge base and its questions is what tuning finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from examples.stark.retrievers import DATA_DIR, knowledge_base
from optimas_lg.data import Example, load_examples
from optimas_lg.graph.knobs import Choice, FloatRange, IntRange

SPLITS = ("train", "val", "test")
CANDIDATES = 50  # fused entities passed to rerank
RANKING = 20  # entities in the final answer (the metric is MRR@20)
RETRIEVERS = ("lexical", "dense", "relational")
BONUS_HOPS = 2  # how far a candidate may be from a named entity to count as linked to it
# words that say which entity type a question asks for; the earliest in the question wins
TYPE_WORDS = {"drug": "drug", "inhibitor": "drug", "antibody": "drug", "steroid": "drug",
              "corticosteroid": "drug", "blocker": "drug", "antiviral": "drug", "gene": "gene",
              "disease": "disease", "disorder": "disease", "pathway": "pathway"}


@dataclass
class AgentConfig:
    """The knobs optimas-lg may tune; a node reads the ones for it from ``runtime.context``."""

    lexical_top_k: Annotated[int, IntRange(5, 100, node="lexical")] = 20
    dense_top_k: Annotated[int, IntRange(5, 100, node="dense")] = 20
    relation_hops: Annotated[int, IntRange(1, 3, node="relational")] = 2
    relation_top_k: Annotated[int, IntRange(5, 100, node="relational")] = 20
    fusion: Annotated[str, Choice(["rrf", "weighted_sum"], node="fuse")] = "rrf"
    rrf_k: Annotated[int, IntRange(1, 100, node="fuse")] = 60
    lexical_weight: Annotated[float, FloatRange(0.0, 2.0, node="fuse")] = 1.0
    dense_weight: Annotated[float, FloatRange(0.0, 2.0, node="fuse")] = 1.0
    relation_weight: Annotated[float, FloatRange(0.0, 2.0, node="fuse")] = 1.0
    type_bonus: Annotated[float, FloatRange(0.0, 1.0, node="rerank")] = 0.1
    relation_bonus: Annotated[float, FloatRange(0.0, 1.0, node="rerank")] = 0.1


class State(TypedDict, total=False):
    question: str
    linked: list[str]  # entities the question names
    lexical: list[tuple[str, float]]
    dense: list[tuple[str, float]]
    relational: list[tuple[str, float]]
    candidates: list[tuple[str, float]]  # fused, best first
    ranking: list[str]  # the answer: entity names, best first


def _config(runtime: Runtime[AgentConfig]) -> AgentConfig:
    # runtime.context is None when the caller passes no context: use the defaults then.
    return runtime.context if runtime.context is not None else AgentConfig()


def _rounded(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(name, round(score, 4)) for name, score in hits]


def lexical(state: State, runtime: Runtime[AgentConfig]) -> State:
    """BM25 over each entity's name, type, description and attributes."""
    return {"lexical": _rounded(knowledge_base().lexical(state["question"], _config(runtime).lexical_top_k))}


def dense(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Cosine similarity of MiniLM embeddings of the question and of each entity's text."""
    return {"dense": _rounded(knowledge_base().dense(state["question"], _config(runtime).dense_top_k))}


def relational(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Link the entities the question names, then follow relations out from them."""
    cfg, kb = _config(runtime), knowledge_base()
    linked = kb.link(state["question"])
    return {"linked": linked, "relational": _rounded(kb.relational(linked, cfg.relation_hops, cfg.relation_top_k))}


def fuse(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Merge the three lists: RRF (sum of weight / (k + rank)) or a weighted sum of each
    retriever's scores scaled to [0, 1] over its own list (absent = 0)."""
    cfg = _config(runtime)
    weights = {"lexical": cfg.lexical_weight, "dense": cfg.dense_weight, "relational": cfg.relation_weight}
    fused: dict[str, float] = {}
    for retriever in RETRIEVERS:
        hits = state.get(retriever) or []
        if not hits:
            continue
        scores = [s for _, s in hits]
        low, span = min(scores), max(scores) - min(scores)
        for rank, (name, score) in enumerate(hits, 1):
            part = 1 / (cfg.rrf_k + rank) if cfg.fusion == "rrf" else (score - low) / span if span else 1.0
            fused[name] = fused.get(name, 0.0) + weights[retriever] * part
    ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:CANDIDATES]
    return {"candidates": _rounded(ranked)}


def asked_type(question: str) -> str | None:
    """The entity type the question asks for: the type word that comes first in it."""
    words = question.lower().replace("-", " ").split()
    return next((TYPE_WORDS[w.strip("?,.")] for w in words if w.strip("?,.") in TYPE_WORDS), None)


def rerank(state: State, runtime: Runtime[AgentConfig]) -> State:
    """Fused score (scaled so the best is 1) plus ``type_bonus`` when the entity has the
    asked type and ``relation_bonus`` times the share of named entities it is linked to
    within ``BONUS_HOPS`` relations."""
    cfg, kb = _config(runtime), knowledge_base()
    candidates = state.get("candidates") or []
    if not candidates:
        return {"ranking": []}
    top = max(score for _, score in candidates) or 1.0
    wanted = asked_type(state["question"])
    linked = state.get("linked") or []
    near = [kb.distances(name, BONUS_HOPS) for name in linked]

    def score(name: str, fused: float) -> float:
        bonus = cfg.type_bonus if kb.entities[name]["type"] == wanted else 0.0
        if near:
            bonus += cfg.relation_bonus * sum(name in reach for reach in near) / len(near)
        return fused / top + bonus

    ranked = sorted(candidates, key=lambda item: (-score(*item), item[0]))
    return {"ranking": [name for name, _ in ranked[:RANKING]]}


builder = StateGraph(State, context_schema=AgentConfig)
for retriever in (lexical, dense, relational):
    builder.add_node(retriever)
    builder.add_edge(START, retriever.__name__)
builder.add_node(fuse)
builder.add_node(rerank)
builder.add_edge(list(RETRIEVERS), "fuse")
builder.add_edge("fuse", "rerank")
builder.add_edge("rerank", END)
graph = builder.compile()


def load_split(name: str, limit: int | None = None) -> list[Example]:
    """The committed ``train``, ``val`` or ``test`` questions; labels hold the gold entity names."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; use one of {SPLITS}")
    examples = load_examples(DATA_DIR / f"{name}.jsonl", inputs=["question"], labels=["answers", "template"])
    return examples if limit is None else examples[:limit]

"""The STaRK-style retrieval example: its generator, splits, metric, retrievers, fusion
and the graph end to end on real questions (the dense retriever loads the bundled MiniLM)."""

from __future__ import annotations

import json

import pytest
from langgraph.runtime import Runtime

from examples import stark
from examples.paper_eval import main as score_split
from examples.stark import agent
from examples.stark.agent import AgentConfig, asked_type, builder, graph, load_split
from examples.stark.generate import DATA_DIR, SEED, SPLIT_SIZES, generate
from examples.stark.metric import hit_at_k, metric, reciprocal_rank
from examples.stark.retrievers import knowledge_base
from optimas_lg.data import Example
from optimas_lg.graph.knobs import knob_specs


def _example(*answers: str) -> Example:
    return Example("q", {"question": "?"}, {"answers": list(answers)})


def test_generator_is_seeded_and_matches_the_committed_files():
    data = generate(SEED)
    assert data == generate(SEED)
    assert data["entities"] != generate(SEED + 1)["entities"]
    for name, rows in data.items():
        committed = [json.loads(line) for line in (DATA_DIR / f"{name}.jsonl").read_text().splitlines()]
        assert committed == rows, f"data/{name}.jsonl is stale: run python -m examples.stark.generate"


def test_splits_are_disjoint_sized_and_their_answers_are_entities_of_the_asked_type():
    kb = knowledge_base()
    seen: set[str] = set()
    for name, size in SPLIT_SIZES.items():
        examples = load_split(name)
        questions = {e.inputs["question"] for e in examples}
        assert len(examples) == len(questions) == size
        assert not questions & seen
        seen |= questions
        assert len({e.labels["template"] for e in examples}) == 7
        for e in examples:
            assert {kb.entities[a]["type"] for a in e.labels["answers"]} == {asked_type(e.inputs["question"])}
    assert [e.key for e in load_split("val", limit=3)] == ["val-000", "val-001", "val-002"]
    with pytest.raises(ValueError, match="unknown split"):
        load_split("dev")


@pytest.mark.parametrize(("ranking", "gold", "expected"), [
    (["a", "b", "c"], {"a"}, 1.0),
    (["x", "y", "a"], {"a"}, 1 / 3),
    (["x", "b", "a"], {"a", "b"}, 0.5),  # the first gold entity counts
    (["x", "y"], {"a"}, 0.0),
    ([], {"a"}, 0.0),
])
def test_reciprocal_rank(ranking, gold, expected):
    assert reciprocal_rank(ranking, gold) == pytest.approx(expected)


def test_metric_and_hit_at_k_read_the_ranking():
    example = _example("Gold", "Other gold")
    output = {"ranking": ["a", "b", "Other gold", "Gold"]}
    assert metric(example, output) == pytest.approx(1 / 3)
    assert metric(example, output["ranking"]) == pytest.approx(1 / 3)
    assert metric(example, {"ranking": None}) == metric(example, {}) == 0.0
    assert [hit_at_k(example, output, k) for k in (1, 2, 3, 5)] == [0.0, 0.0, 1.0, 1.0]


def test_linking_and_relation_following():
    kb = knowledge_base()
    row = next(r for r in generate(SEED)["relations"] if r["relation"] == "associated_with")
    gene, disease = row["head"], row["tail"]
    assert kb.link(f"Which gene linked to {disease.lower()} is expressed in the liver?") == [disease, "liver"]
    assert gene in dict(kb.relational([disease], hops=1, k=100))
    assert disease not in dict(kb.relational([disease], hops=2, k=100))
    assert kb.distances(disease, 1)[gene] == 1


def _fuse(config: AgentConfig, **lists) -> list[str]:
    return [name for name, _ in agent.fuse({"question": "?", **lists}, Runtime(context=config))["candidates"]]


def test_fusion_methods_and_weights():
    lists = {"lexical": [("a", 9.0), ("b", 5.0), ("c", 1.0)], "dense": [("b", 0.9), ("c", 0.8)], "relational": []}
    # RRF: b and c are found by both retrievers, so they beat a, the lexical top entity
    assert _fuse(AgentConfig(), **lists) == ["b", "c", "a"]
    assert _fuse(AgentConfig(dense_weight=0.0), **lists) == ["a", "b", "c"]
    # weighted sum of min-max scaled scores: a 1 + 0, b 0.5 + 0.4 * 1, c 0 + 0.4 * 0
    assert _fuse(AgentConfig(fusion="weighted_sum", dense_weight=0.4), **lists) == ["a", "b", "c"]
    assert _fuse(AgentConfig(fusion="weighted_sum", dense_weight=0.6), **lists) == ["b", "a", "c"]


def test_rerank_bonuses_lift_the_asked_type_and_linked_entities():
    kb = knowledge_base()
    drug = next(n for n, e in kb.entities.items() if e["type"] == "drug")
    gene = next(n for n, e in kb.entities.items() if e["type"] == "gene" and drug not in kb.distances(n, 3))
    state = {"question": "Which drug is it?", "candidates": [(gene, 1.0), (drug, 0.95)], "linked": []}
    assert agent.rerank(state, Runtime(context=AgentConfig(type_bonus=0.0)))["ranking"] == [gene, drug]
    assert agent.rerank(state, Runtime(context=AgentConfig(type_bonus=0.1)))["ranking"] == [drug, gene]
    linked = {**state, "question": "Which is it?", "linked": [next(iter(kb.distances(drug, 1)))]}
    assert agent.rerank(linked, Runtime(context=AgentConfig(relation_bonus=0.0)))["ranking"] == [gene, drug]
    assert agent.rerank(linked, Runtime(context=AgentConfig(relation_bonus=0.1)))["ranking"] == [drug, gene]


def test_knobs_are_declared_on_graph_nodes():
    specs = knob_specs(AgentConfig, builder.nodes)
    assert {s.kind for s in specs.values()} == {"int", "float", "choice"}
    assert {s.node for s in specs.values()} == set(builder.nodes)


def test_graph_runs_end_to_end_on_real_questions():
    examples = load_split("val", limit=6)
    outputs = graph.batch([e.inputs for e in examples])  # no context: the defaults
    kb = knowledge_base()
    for out in outputs:
        assert set(out) == {"question", "linked", "lexical", "dense", "relational", "candidates", "ranking"}
        assert 0 < len(out["ranking"]) <= agent.RANKING and set(out["ranking"]) <= set(kb.entities)
    assert sum(metric(e, out) for e, out in zip(examples, outputs)) > 0
    tuned = graph.invoke(examples[0].inputs, context=AgentConfig(fusion="weighted_sum", dense_top_k=5))
    assert len(tuned["dense"]) == 5


def test_cli_scores_a_split(capsys):
    score = score_split(stark, ["--split", "val", "--limit", "3", "--show", "--set", "fusion=weighted_sum"])
    out = capsys.readouterr().out
    assert "gold=" in out and "top3=" in out and "n=3" in out and 0 <= score <= 1

"""Pair construction from a hand-made rollout table: exactly the expected pairs and weights."""

import math

import pytest

from optimas_lg.errors import LRFError
from optimas_lg.lrf import Candidate, PreferencePair, build_pairs
from optimas_lg.lrf.pairs import count_ties, gains_over_current

Q = {"q": "2+2"}


def table() -> list[Candidate]:
    return [
        # the loser is listed first: pairs must not depend on candidate order
        Candidate("answer", "e1", Q, {"a": "5"}, {"temp": 0.7}, [0.0, 0.0]),
        Candidate("answer", "e1", Q, {"a": "4"}, {"temp": 0.0}, [1.0, 0.5]),
        Candidate("answer", "e1", Q, {"a": "4 "}, {}, [1.0, 0.0]),
        Candidate("answer", "e1", Q, {"a": "four"}, {}, [0.5]),
        Candidate("answer", "e1", Q, {"a": "4"}, {"temp": 1.0}, [1.0]),  # same output: pooled with the 2nd row
        Candidate("answer", "e1", {"q": "3+3"}, {"a": "7"}, {}, [0.0]),  # other input: own group
        Candidate("answer", "e1", {"q": "3+3"}, {"a": "6"}, {}, [1.0]),
        Candidate("retrieve", "e1", Q, {"docs": ["math"]}, {}, [0.9]),
        Candidate("retrieve", "e1", Q, {"docs": ["poems"]}, {}, [0.3]),
        Candidate("answer", "e2", Q, {"a": "4"}, {}, [1.0]),  # alone in its group: no pair
    ]


def test_every_pair_with_a_gap_once_higher_score_chosen():
    pairs = build_pairs(table())
    got = {(p.node, p.inputs["q"], repr(p.chosen), repr(p.rejected), round(p.weight, 6)) for p in pairs}
    four = 2.5 / 3  # "4" pooled over [1.0, 0.5, 1.0]
    assert got == {
        ("answer", "2+2", "{'a': '4'}", "{'a': '5'}", round(four, 6)),
        ("answer", "2+2", "{'a': '4'}", "{'a': '4 '}", round(four - 0.5, 6)),
        ("answer", "2+2", "{'a': '4'}", "{'a': 'four'}", round(four - 0.5, 6)),
        ("answer", "2+2", "{'a': '4 '}", "{'a': '5'}", 0.5),
        ("answer", "2+2", "{'a': 'four'}", "{'a': '5'}", 0.5),
        ("answer", "3+3", "{'a': '6'}", "{'a': '7'}", 1.0),
        ("retrieve", "2+2", "{'docs': ['math']}", "{'docs': ['poems']}", 0.6),
    }
    assert len(pairs) == 7  # no duplicates, no tie pair ("4 " vs "four"), no self pair
    for p in pairs:
        assert p.margin == pytest.approx(p.weight) and p.margin > 0 and p.chosen != p.rejected


def test_ties_are_the_comparisons_without_a_pair():
    assert count_ties(table()) == 1  # "4 " and "four" both scored 0.5
    # every comparison of distinct outputs of one input is either a pair or a tie
    for margin in (0.0, 0.4):
        assert len(build_pairs(table(), min_margin=margin)) + count_ties(table(), margin) == 6 + 1 + 1
    assert count_ties(table(), 0.4) == 3


def test_min_margin_filters_small_gaps():
    got = {(repr(p.chosen), repr(p.rejected)) for p in build_pairs(table(), min_margin=0.4) if p.node == "answer"}
    assert got == {("{'a': '4'}", "{'a': '5'}"), ("{'a': '4 '}", "{'a': '5'}"), ("{'a': 'four'}", "{'a': '5'}"),
                   ("{'a': '6'}", "{'a': '7'}")}


def test_normalize_gives_mean_weight_one_per_node():
    pairs = build_pairs(table(), normalize=True)
    for node in ("answer", "retrieve"):
        weights = [p.weight for p in pairs if p.node == node]
        assert sum(weights) / len(weights) == pytest.approx(1.0)


def test_identical_outputs_never_pair():
    cands = [Candidate("n", "e", Q, {"a": "x"}, {}, [s]) for s in (0.0, 1.0, 0.2)]
    assert build_pairs(cands) == []


def test_bad_scores_are_errors_not_minus_inf():
    with pytest.raises(LRFError, match="non-finite"):
        build_pairs([Candidate("n", "e", Q, {"a": "x"}, {}, [-math.inf]),
                     Candidate("n", "e", Q, {"a": "y"}, {}, [1.0])])
    with pytest.raises(LRFError, match="no rollout scores"):
        build_pairs([Candidate("n", "e", Q, {"a": "x"}, {}, [])])


def test_pair_json_round_trip():
    import json

    for pair in build_pairs(table()):
        assert PreferencePair.from_dict(json.loads(json.dumps(pair.to_dict()))) == pair
    with pytest.raises(LRFError):
        PreferencePair.from_dict({"node": "n"})


def test_gains_over_current_is_the_best_candidate_minus_the_current_output_per_input():
    current = {"temp": 0.0}
    cands = [
        Candidate("answer", "e1", Q, {"a": "4"}, current, [0.5]),
        Candidate("answer", "e1", Q, {"a": "four"}, {"temp": 0.7}, [1.0]),
        Candidate("answer", "e1", Q, {"a": "5"}, {"temp": 1.0}, [0.0]),
        Candidate("answer", "e2", Q, {"a": "4"}, current, [1.0]),  # the current output is the best: 0
        Candidate("answer", "e2", Q, {"a": "5"}, {"temp": 1.0}, [0.0]),
        Candidate("answer", "e3", Q, {"a": "5"}, {"temp": 1.0}, [1.0]),  # current output not scored: left out
    ]
    assert gains_over_current(cands, current) == [0.5, 0.0]

"""The trust rule: an LRF head is trusted when the 95% Wilson lower bound of its held-out
ranking accuracy, over the examples the pairs come from, is above 0.5; a small n widens
the interval."""

from __future__ import annotations

import pytest

from optimas_lg.loop.records import LRFEvent
from optimas_lg.lrf.trust import LRFTrust, examples_for_trust, wilson_interval


def test_wilson_interval_matches_the_textbook_values():
    assert wilson_interval(0.8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # 8 of 10
    assert wilson_interval(0.5, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(1.0, 5) == pytest.approx((0.5655, 1.0), abs=1e-4)
    assert wilson_interval(0.0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="accuracy must be in"):
        wilson_interval(1.5, 10)


def test_trusted_only_when_the_lower_bound_is_above_chance():
    strong = LRFTrust.measure("answer", 0.82, 80, 40)
    assert strong.trusted and strong.describe() == "0.82 [0.67, 0.91] 80 pairs / 40 examples"
    assert not LRFTrust.measure("answer", 0.70, 10, 10).trusted  # same accuracy, too few examples
    assert LRFTrust.measure("answer", 0.70, 100, 100).trusted
    assert not LRFTrust.measure("rewrite", 0.44, 30, 30).trusted
    none = LRFTrust.measure("retrieve", None, 0, 0)
    assert not none.trusted and none.describe() == "no held-out pairs"
    assert LRFTrust.from_json(strong.to_json()) == strong and strong.to_json()["trusted"] is True
    with pytest.raises(ValueError, match="cannot give only"):
        LRFTrust.measure("answer", 0.9, 3, 5)


def test_pairs_of_the_same_examples_do_not_count_as_independent_evidence():
    # make demo: an adapted head ranked its 6 fresh pairs right, all from one question, and was
    # trusted at [0.61, 1.00]; it then picked a prompt that lost 0.19 on val.
    assert LRFTrust.measure("answer", 1.0, 6, 6).trusted
    one = LRFTrust.measure("answer", 1.0, 6, 1)
    assert not one.trusted and one.describe() == "1.00 [0.21, 1.00] 6 pairs / 1 examples"
    assert not LRFTrust.measure("answer", 1.0, 6, 3).trusted  # [0.44, 1.00]


def test_an_lrf_event_gives_each_measured_node_its_trust():
    event = LRFEvent("initial", 1, 70, {"rewrite": 0.9, "answer": 0.9, "__overall__": 0.9},
                     n_eval_by_node={"rewrite": 50, "answer": 50},
                     n_eval_examples_by_node={"rewrite": 50, "answer": 5})
    assert event.trust("rewrite").trusted
    assert not event.trust("answer").trusted  # 0.9 over 5 examples: [0.38, 0.98]
    assert event.trust("retrieve") is None
    old = LRFEvent("initial", 1, 70, {"answer": 0.9}, n_eval_by_node={"answer": 50})  # stored before examples counted
    assert old.trust("answer").examples == 50


def test_examples_for_trust_is_the_fewest_held_out_examples_that_clear_chance():
    assert examples_for_trust() == 4  # a perfect ranking: [0.51, 1.00] on 4 examples, [0.44, 1.00] on 3
    assert not LRFTrust.measure("answer", 1.0, 3, 3).trusted and LRFTrust.measure("answer", 1.0, 4, 4).trusted
    assert examples_for_trust(0.75) == 16
    assert not LRFTrust.measure("answer", 0.75, 15, 15).trusted and LRFTrust.measure("answer", 0.75, 16, 16).trusted
    assert examples_for_trust(0.5) is None  # a coin is never trusted, on any number of examples

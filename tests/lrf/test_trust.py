"""The trust rule: an LRF head is trusted when the 95% Wilson lower bound of its held-out
ranking accuracy is above 0.5; a small n widens the interval."""

from __future__ import annotations

import pytest

from optimas_lg.loop.records import LRFEvent
from optimas_lg.lrf.trust import LRFTrust, wilson_interval


def test_wilson_interval_matches_the_textbook_values():
    assert wilson_interval(0.8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # 8 of 10
    assert wilson_interval(0.5, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(1.0, 5) == pytest.approx((0.5655, 1.0), abs=1e-4)
    assert wilson_interval(0.0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="accuracy must be in"):
        wilson_interval(1.5, 10)


def test_trusted_only_when_the_lower_bound_is_above_chance():
    strong = LRFTrust.measure("answer", 0.82, 40)
    assert strong.trusted and strong.describe() == "0.82 [0.67, 0.91] n=40"
    assert not LRFTrust.measure("answer", 0.70, 10).trusted  # same accuracy, too few pairs
    assert LRFTrust.measure("answer", 0.70, 100).trusted
    assert not LRFTrust.measure("rewrite", 0.44, 30).trusted
    none = LRFTrust.measure("retrieve", None, 0)
    assert not none.trusted and none.describe() == "no held-out pairs"
    assert LRFTrust.from_json(strong.to_json()) == strong and strong.to_json()["trusted"] is True


def test_an_lrf_event_gives_each_measured_node_its_trust():
    event = LRFEvent("initial", 1, 70, {"rewrite": 0.9, "answer": 0.9, "__overall__": 0.9},
                     n_eval_by_node={"rewrite": 50, "answer": 5})
    assert event.trust("rewrite").trusted
    assert not event.trust("answer").trusted  # 0.9 on 5 pairs: [0.38, 0.98]
    assert event.trust("retrieve") is None

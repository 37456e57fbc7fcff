"""How the loop spreads a budget of system runs over its rounds (``round_share``,
``system_round_share``)."""

from __future__ import annotations

import pytest

from optimas_lg.loop.budget import round_share, system_round_share


@pytest.mark.parametrize(("remaining", "validation", "rounds", "share"), [
    (134, 30, 5, 37),  # STaRK after its baseline and collect runs: two rounds planned, not one
    (134, 30, 1, 104),  # the last round may spend all but its validation
    (300, 30, 5, 30),  # every reached node gets a round: (300 - 5 * 30) // 5
    (50, 30, 5, 20),  # too little for two rounds: one, with what its validation leaves
    (20, 30, 3, 0),  # not even a validation: nothing to spend
    (0, 30, 3, 0),
])
def test_a_round_gets_an_even_share_of_what_the_rounds_to_come_leave(remaining, validation, rounds, share):
    assert round_share(remaining, validation, rounds) == share


def test_every_planned_round_can_still_be_validated():
    for remaining in range(0, 400, 7):
        for rounds in range(1, 9):
            share = round_share(remaining, 30, rounds)
            planned = max(1, min(rounds, remaining // 60))
            assert share >= 0 and (remaining < 30 or planned * (share + 30) <= remaining)


@pytest.mark.parametrize(("remaining", "validation", "rounds", "share", "runs"), [
    (160, 20, 4, 0.5, 70),  # HotpotQA at 200 runs: an equal share would be 20, two trials of 8
    (134, 30, 5, 0.5, 52),
    (134, 30, 1, 0.5, 104),  # the only round: its equal share is more
    (20, 30, 3, 0.5, 0),  # not even a validation
])
def test_the_system_round_gets_its_share_or_an_equal_one_when_that_is_more(remaining, validation, rounds, share,
                                                                           runs):
    assert system_round_share(remaining, validation, rounds, share) == runs

"""An LRF that has not earned trust does not pick the winner alone: its top candidates and
the current value go to the global check, within the system runs left. The LRF and the
global metric are stand-ins that disagree on purpose (the loop wires in the real ones)."""

from __future__ import annotations

from typing import Any

import pytest

from optimas_lg.graph.knobs import Choice, KnobSpec
from optimas_lg.lrf.trust import LRFTrust
from optimas_lg.proposers import ChoiceConfig, ChoiceProposer, JointConfig, JointProposer, ProposalContext

LEVEL = KnobSpec("level", Choice(["a", "b", "c", "d", "e"], node="n"), "a")
LRF_ORDER = {"a": 0.0, "b": 3.0, "c": 2.0, "d": 4.0, "e": 1.0}  # the LRF prefers d, then b, c
METRIC = {"a": 0.2, "b": 0.3, "c": 0.6, "d": 0.1, "e": 0.9}  # the global metric prefers e, then c
TRUSTED = LRFTrust.measure("n", 0.82, 40, 40)
UNTRUSTED = LRFTrust.measure("n", 0.44, 30, 30)


def lrf(pairs: list[tuple[dict, dict]]) -> list[float]:
    return [LRF_ORDER[out["level"]] for _, out in pairs]


def context(trust: LRFTrust | None, left: int | None = None, **kw: Any) -> tuple[ProposalContext, list[str]]:
    checked: list[str] = []

    def global_check(knobs: dict[str, Any]) -> float:
        checked.append(knobs["level"])
        return METRIC[knobs["level"]]

    ctx = ProposalContext(node="n", knobs=[LEVEL], current={"level": "a"}, inputs=[{"x": 1}, {"x": 2}],
                          score=lrf, run_node=lambda st, k: {"level": k["level"]}, global_check=global_check,
                          global_runs=8, runs_left=(lambda: left), trust=trust, **kw)
    return ctx, checked


def propose(ctx: ProposalContext, check_top: int = 3):
    return ChoiceProposer(ChoiceConfig(strategy="argmax", check_top=check_top)).propose(ctx, LEVEL)


def test_a_trusted_lrf_picks_alone():
    ctx, checked = context(TRUSTED)
    proposal = propose(ctx)
    assert proposal.value == "d" and checked == [] and proposal.cost.system_runs == 0
    assert proposal.details["trust_decision"] == "LRF trusted: 0.82 [0.67, 0.91] 40 pairs / 40 examples"
    assert proposal.details["trust"]["trusted"] is True


def test_an_untrusted_lrf_is_overruled_when_its_pick_loses_the_global_check():
    ctx, checked = context(UNTRUSTED)
    proposal = propose(ctx)
    assert checked == ["a", "d", "b", "c"]  # the current value, then the LRF's top 3
    assert proposal.value == "c"  # best of the checked on the metric; e (never shortlisted) is not seen
    assert proposal.details["trust_decision"] == ("LRF not trusted (0.44 [0.28, 0.61] 30 pairs / 30 examples): "
                                                  "top 3 checked on the train metric, overruling the LRF's pick")
    assert proposal.details["trust_checked"] == [["a", 0.2], ["d", 0.1], ["b", 0.3], ["c", 0.6]]
    assert proposal.cost.system_runs == 4 * 8
    assert proposal.proposed_score == LRF_ORDER["c"]  # the LRF's own score stays on record


def test_a_head_that_saw_no_pair_is_said_to_be_no_lrf_and_is_not_overruled():
    ctx, checked = context(LRFTrust.untrained("n"))
    proposal = propose(ctx)
    assert checked == ["a", "d", "b", "c"] and proposal.value == "c"  # checked as an untrusted LRF's would be
    assert proposal.details["trust_decision"] == ("no LRF (no pairs for this node): top 3 checked on the train "
                                                  "metric")
    assert LRFTrust.from_json(proposal.details["trust"]) == LRFTrust.untrained("n")
    assert proposal.current_score is proposal.proposed_score is proposal.estimated_gain is None  # no LRF scores
    assert propose(context(UNTRUSTED)[0]).current_score == LRF_ORDER["a"]  # an LRF, however weak, scored them


def test_a_joint_search_ranked_by_no_lrf_records_no_lrf_scores():
    def joint(trust: LRFTrust):
        ctx, _ = context(trust, left=12)  # one check affordable: the LRF objective stands
        [proposal] = JointProposer(JointConfig(objective="lrf", n_trials=5)).propose_all(ctx, [LEVEL])
        return proposal

    assert joint(LRFTrust.untrained("n")).current_score is None
    assert joint(LRFTrust.untrained("n")).proposed_score is None
    assert joint(UNTRUSTED).current_score == LRF_ORDER["a"]


def test_the_current_value_stands_when_no_checked_candidate_beats_it():
    ctx, checked = context(UNTRUSTED)
    proposal = propose(ctx, check_top=1)
    assert checked == ["a", "d"] and proposal.value == "a" and not proposal.changed


def test_the_check_stays_within_the_runs_left():
    ctx, checked = context(UNTRUSTED, left=20)  # two checks of 8 runs
    proposal = propose(ctx)
    assert checked == ["a", "d"] and proposal.cost.system_runs == 16
    assert "top 1 checked on the train metric" in proposal.details["trust_decision"]


@pytest.mark.parametrize("left, global_check, reason", [
    (12, True, "12 system runs left for this round, a check costs 8; the LRF picked alone"),
    (None, False, "no global check in this context; the LRF picked alone"),
])
def test_with_no_runs_left_the_lrf_picks_and_the_reason_is_recorded(left, global_check, reason):
    ctx, checked = context(UNTRUSTED, left=left)
    if not global_check:
        ctx.global_check = None
    proposal = propose(ctx)
    assert proposal.value == "d" and checked == [] and proposal.cost.system_runs == 0
    assert proposal.details["trust_decision"] == f"LRF not trusted (0.44 [0.28, 0.61] 30 pairs / 30 examples): {reason}"


def test_without_a_trained_lrf_nothing_is_checked_or_recorded():
    ctx, checked = context(None)
    proposal = propose(ctx)
    assert proposal.value == "d" and checked == [] and "trust_decision" not in proposal.details


def test_check_top_zero_lets_the_lrf_pick_alone_and_must_not_be_negative():
    ctx, checked = context(UNTRUSTED)
    proposal = propose(ctx, check_top=0)
    assert proposal.value == "d" and checked == []
    assert proposal.details["trust_decision"].endswith("check_top is 0, the LRF picked alone")
    with pytest.raises(ValueError, match="check_top must be >= 0"):
        ChoiceConfig(check_top=-1)


def test_global_only_checks_every_candidate_and_names_no_lrf():
    ctx, checked = context(None, global_only=True)
    proposal = propose(ctx, check_top=0)  # check_top does not limit a ranking with no LRF
    assert checked == ["a", "d", "b", "c", "e"] and proposal.value == "e"
    assert proposal.details["trust_decision"] == "no LRF (ranking=global): all 4 candidates checked on the train metric"
    assert proposal.details["trust"] is None


def test_global_only_keeps_the_current_value_when_no_check_is_affordable():
    ctx, checked = context(None, left=12, global_only=True)
    proposal = propose(ctx)
    assert checked == [] and proposal.value == "a" and not proposal.changed  # the scores are not an LRF's
    assert proposal.details["trust_decision"].endswith("a check costs 8; the current value stays")


def tied(pairs: list[tuple[dict, dict]]) -> list[float]:
    """An LRF with no trained head: every output ties."""
    return [0.0 for _ in pairs]


@pytest.mark.parametrize("trust, why", [
    (UNTRUSTED, "the LRF scored all 5 candidates alike"),
    (LRFTrust.measure("n", 0.0, 0, 0), "the LRF scored all 5 candidates alike"),
    (LRFTrust.untrained("n"), "nothing ranks the 5 candidates")])
def test_an_lrf_that_scores_every_candidate_alike_sends_a_random_other_one_to_the_gate(trust, why):
    """Untrusted, unmeasured (no held-out pair) or untrained (no pair), with no check affordable:
    a tie-break would keep the current value and the round would test nothing."""
    left = 12
    ctx, checked = context(trust, left=left)
    ctx.score = tied
    proposal = propose(ctx)
    assert proposal.changed and proposal.value in {"b", "c", "d", "e"} and checked == []
    assert f"{why}, so a random one goes to the gate" in proposal.details.get("trust_decision", "")
    assert "picked alone" not in proposal.details["trust_decision"]  # it did not: it drew
    again, _ = context(trust, left=left)
    again.score = tied
    assert propose(again).value == proposal.value  # seeded: the same job draws the same candidate


def test_a_tied_draw_never_goes_back_to_what_the_gate_already_judged():
    """After ``a`` replaced ``b`` at the gate (and ``c``, ``d``, ``e`` lost there), a draw with
    nothing to go on has nothing left to try: it spent a validation undoing a kept change."""
    ctx, _ = context(UNTRUSTED, left=12, judged=[{"level": v} for v in "bcd"])
    ctx.score = tied
    assert propose(ctx).value == "e"
    ctx, _ = context(UNTRUSTED, left=12, judged=[{"level": v} for v in "bcde"])
    ctx.score = tied
    assert not propose(ctx).changed


def test_a_trusted_lrf_that_ties_every_candidate_keeps_the_current_value():
    ctx, checked = context(TRUSTED)
    ctx.score = tied
    proposal = propose(ctx)
    assert proposal.value == "a" and not proposal.changed and checked == []

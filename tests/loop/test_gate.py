import pytest

from optimas_lg.loop.gate import GateConfig, check_score, interim_look, interim_size, paired_gate, validate_knobwise


def part(full):
    """A gate ``evaluate`` from a function of the config that scores every example."""
    return lambda values, knobs, indices: [full(values)[i] for i in indices]


def test_clear_paired_gain_is_accepted():
    cur = [0.0, 0.5, 0.2, 0.0, 1.0, 0.3, 0.1, 0.0, 0.4, 0.2, 0.0, 0.6]
    new = [c + 0.3 for c in cur]
    d = paired_gate(cur, new)
    assert d.accepted and abs(d.mean_diff - 0.3) < 1e-9 and d.stderr < 1e-9


def test_noise_is_rejected_even_when_mean_is_higher():
    cur = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    new = [0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1]  # one net win out of 12: noise
    d = paired_gate(cur, new)
    assert d.mean_diff > 0 and not d.accepted and "noise" in d.reason


def test_failed_runs_count_as_zero_and_too_few_examples_are_rejected():
    d = paired_gate([0.5] * 12, [None] * 12)
    assert not d.accepted and d.mean_proposed == 0.0
    d = paired_gate([0.0] * 5, [1.0] * 5, GateConfig(min_examples=10))
    assert not d.accepted and "only 5" in d.reason


def test_a_change_that_breaks_runs_never_passes_even_when_the_metric_goes_below_zero():
    """A cost metric (-2 per wrong answer, 0 when right): a config that crashes on 5 of 12
    inputs and is right on the rest used to pass, its failures scored 0, the best outcome."""
    d = paired_gate([-2.0] * 12, [None] * 5 + [0.0] * 7)
    assert not d.accepted and "fails on 5 of 12" in d.reason and d.mean_proposed < d.mean_current + 2
    assert paired_gate([None] * 2 + [-2.0] * 10, [None] * 2 + [0.0] * 10).accepted  # failing as before: no block


def test_a_training_check_ranks_a_proposal_that_breaks_runs_below_the_current_config():
    """What the search sees must agree with the gate, or it spends its round on a change the gate rejects."""
    current = [-2.0] * 8
    assert check_score(current, [None] * 8) < check_score(current, current) == -2.0
    assert check_score(current, [None] * 3 + [0.0] * 5) < -2.0  # right on 5, broken on 3: still below
    assert check_score(current, [None] * 3 + [0.0] * 5) > check_score(current, [None] * 8)  # fewer broken: higher
    assert check_score([None] + [0.5] * 7, [None] + [1.0] * 7) == 7 / 8  # failing where the current fails: no penalty


def test_min_gain_blocks_tiny_improvements():
    cur = [0.5] * 20
    new = [0.505] * 20
    assert not paired_gate(cur, new).accepted


def test_knobwise_keeps_the_useful_knob_when_a_harmful_one_rode_along():
    # 20 examples: the new format fixes examples 0-9; the new prompt breaks examples 0-2.
    def evaluate(values, knobs=()):
        fixed = values["format"] == "entity"
        broken = values["prompt"] != "Answer."
        return [1.0 if fixed and i < 10 and not (broken and i < 3) else 0.0 for i in range(20)]

    current = {"format": "sentence", "prompt": "Answer.", "top_k": 3}
    changes = {"format": "entity", "prompt": "junk from a small proposer"}
    tried = []
    values, scores, steps = validate_knobwise(current, evaluate(current), changes,
                                              lambda v, k, i: tried.append((k, i)) or part(evaluate)(v, k, i))
    assert values == {**current, "format": "entity"}
    assert scores == evaluate(values)
    assert [(s.knobs, s.accepted) for s in steps] == [(("format",), True), (("prompt",), False)]
    # no joint try (one knob passed); the prompt, behind on the first half, stops there
    assert tried == [(("format",), list(range(10))), (("format",), list(range(10, 20))), (("prompt",), list(range(10)))]
    assert "not ahead after 10 of 20" in steps[1].decision.reason and steps[1].decision.n == 10


def test_knobwise_tries_the_joint_change_only_when_no_knob_passes_alone():
    def evaluate(values, knobs=()):  # only a and b together fix examples 0-9
        return [float(values["a"] == 1 and values["b"] == 1 and i < 10) for i in range(20)]

    current = {"a": 0, "b": 0}
    values, _, steps = validate_knobwise(current, evaluate(current), {"a": 1, "b": 1}, part(evaluate))
    assert values == {"a": 1, "b": 1}
    assert [(s.knobs, s.accepted) for s in steps] == [(("a",), False), (("b",), False), (("a", "b"), True)]

    def nothing(values, knobs=()):
        return [0.0] * 20

    values, _, steps = validate_knobwise(current, nothing(current), {"a": 1}, part(nothing))
    assert values == current and len(steps) == 1 and not steps[0].accepted


def test_knobs_one_search_chose_together_are_validated_as_one_unit():
    def evaluate(values, knobs=()):  # a and b (one joint search) fix examples 0-9; the prompt breaks 0-2
        fixed = values["a"] == 1 and values["b"] == 1
        return [float(fixed and i < 10 and not (values["prompt"] == "junk" and i < 3)) for i in range(20)]

    current = {"a": 0, "b": 0, "prompt": "Answer."}
    tried = []
    values, _, steps = validate_knobwise(current, evaluate(current), {"a": 1, "b": 1, "prompt": "junk"},
                                         lambda v, k, i: tried.append(k) or part(evaluate)(v, k, i),
                                         units=[("a", "b"), ("prompt",)])
    assert values == {"a": 1, "b": 1, "prompt": "Answer."}
    assert tried == [("a", "b"), ("a", "b"), ("prompt",)]  # two validations, not a, b, prompt and a joint retry
    assert [s.accepted for s in steps] == [True, False]


def test_a_try_not_ahead_after_half_the_examples_is_rejected_there():
    current = [0.5] * 15
    assert interim_size(30) == 15
    behind = interim_look(current, [0.5] * 14 + [0.4], 30)
    assert not behind.accepted and behind.n == 15 and "not ahead after 15 of 30" in behind.reason
    assert "the other 15 not run" in behind.reason
    assert "fails on 1 of the first 15" in interim_look(current, [1.0] * 14 + [None], 30).reason
    assert interim_look(current, [0.5] * 14 + [0.6], 30) is None  # ahead, by however little: run the rest


def test_the_interim_look_saves_the_rest_of_a_losing_try_and_keeps_a_winning_one():
    calls = []

    def evaluate(values, knobs, indices):
        calls.append(indices)
        return [float(values["fmt"] == "entity" and i % 3 == 0) for i in indices]

    current = {"fmt": "sentence"}
    _, scores, steps = validate_knobwise(current, [0.0] * 30, {"fmt": "entity"}, evaluate)
    assert steps[0].accepted and calls == [list(range(15)), list(range(15, 30))] and steps[0].decision.n == 30
    assert scores == evaluate({"fmt": "entity"}, (), range(30))
    calls.clear()
    _, _, steps = validate_knobwise(current, [1.0] * 30, {"fmt": "entity"}, evaluate)
    assert not steps[0].accepted and calls == [list(range(15))]


def test_the_look_reads_the_first_part_of_the_given_order_and_scores_come_back_in_the_examples_order():
    """A set sorted so that the gain sits in its second half: in a shuffled order the look sees it."""
    def second_half(values):
        return [float(values["x"] == 1 and i >= 15) for i in range(30)]

    order = [*range(15, 30), *range(15)]  # the helped examples run first
    values, scores, steps = validate_knobwise({"x": 0}, [0.0] * 30, {"x": 1}, part(second_half), order=order)
    assert steps[0].accepted and scores == second_half({"x": 1})


def test_a_gain_carried_by_the_second_half_alone_is_lost_unless_the_look_is_off():
    """The price of the look, as its docstring says; ``futility_at=None`` runs every example."""
    def second_half(values):
        return [float(values["x"] == 1 and i >= 15) for i in range(30)]

    assert not validate_knobwise({"x": 0}, [0.0] * 30, {"x": 1}, part(second_half))[2][0].accepted
    _, _, steps = validate_knobwise({"x": 0}, [0.0] * 30, {"x": 1}, part(second_half), GateConfig(futility_at=None))
    assert steps[0].accepted


def test_the_look_needs_min_examples_in_its_share():
    assert interim_size(12) is None  # 6 < min_examples 10: every example runs
    assert interim_size(20) == 10 and interim_size(30, GateConfig(futility_at=0.4)) == 12
    assert interim_size(30, GateConfig(futility_at=None)) is None
    with pytest.raises(ValueError, match="futility_at must be between 0 and 1"):
        GateConfig(futility_at=1.0)


def test_a_gain_of_min_gain_on_paper_meets_it_whatever_float_rounding_does():
    current = [0.84, 0.76, 0.42, 0.26, 0.51, 0.4, 0.78, 0.3, 0.48, 0.58]
    proposed = [*current[:3], 0.36, *current[4:]]  # one example up by 0.1: a mean gain of 0.01, 0.00999... in floats
    decision = paired_gate(current, proposed, GateConfig(min_gain=0.01, z=0.0))
    assert decision.mean_diff < 0.01 and decision.accepted, decision.reason


def test_a_gain_just_below_min_gain_never_reads_as_min_gain():
    decision = paired_gate([0.0] * 10, [0.0998] + [0.0] * 9, GateConfig(min_gain=0.01))
    assert not decision.accepted and decision.reason == "gain +0.00998 below min_gain 0.01", decision.reason

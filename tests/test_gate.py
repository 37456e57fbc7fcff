from optimas_lg.gate import GateConfig, paired_gate, prune_change


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


def test_min_gain_blocks_tiny_improvements():
    cur = [0.5] * 20
    new = [0.505] * 20
    assert not paired_gate(cur, new).accepted


def test_prune_reverts_a_knob_that_rode_along_and_keeps_the_one_that_helps():
    # 20 examples: the new format fixes examples 0-9; the new prompt changes nothing.
    def evaluate(values):
        return [1.0 if values["format"] == "entity" and i < 10 else 0.0 for i in range(20)]

    previous = {"format": "sentence", "prompt": "Answer."}
    proposed = {"format": "entity", "prompt": "junk from a small proposer", "top_k": 3}
    tried = []
    values, scores, steps = prune_change(previous, proposed, evaluate(proposed),
                                         lambda v: tried.append(dict(v)) or evaluate(v))
    assert values == {"format": "entity", "prompt": "Answer.", "top_k": 3}
    assert scores == evaluate(values)
    assert [(s.knob, s.kept) for s in steps] == [("format", True), ("prompt", False)]
    assert tried == [{**proposed, "format": "sentence"}, {**proposed, "prompt": "Answer."}]


def test_prune_keeps_knobs_that_each_help_and_leaves_a_single_change_alone():
    def evaluate(values):
        return [float(values["a"] == 1 and i < 10) + float(values["b"] == 1 and i >= 10) for i in range(20)]

    both = {"a": 1, "b": 1}
    values, _, steps = prune_change({"a": 0, "b": 0}, both, evaluate(both), evaluate)
    assert values == both and [s.kept for s in steps] == [True, True]
    calls = []
    values, _, steps = prune_change({"a": 0}, both, evaluate(both), lambda v: calls.append(v) or evaluate(v))
    assert values == both and steps == [] and calls == []  # one changed knob: the gate already decided

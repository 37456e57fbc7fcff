from optimas_lg.gate import GateConfig, paired_gate


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

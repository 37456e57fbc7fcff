"""One registry: the default proposer per knob kind, configured by JSON settings and
replaced by argument (instances or classes); bad settings are ``SettingsError``s."""

from __future__ import annotations

import pytest

from optimas_lg.errors import SettingsError
from optimas_lg.graph.knobs import Choice, IntRange, KnobSpec, Prompt
from optimas_lg.proposers import (
    ChoiceProposer,
    JointProposer,
    PromptProposer,
    ProposalError,
    Search,
    build_proposers,
    proposer_for,
    proposer_groups,
)

STYLE = KnobSpec("style", Choice(["a", "b"], node="answer"), "a")


class FirstOption(ChoiceProposer):
    """A user's proposer: always the first option."""

    def search(self, ctx, knob, evaluator):
        return Search(knob.knob.options[0], {"rule": "first"})


def test_defaults_cover_every_kind_and_take_settings():
    table = build_proposers({"prompt": {"rounds": 1}, "choice": {"use": "optimas_lg.proposers:ChoiceProposer",
                                                                 "strategy": "argmax"}})
    assert set(table) == {"prompt", "choice", "int", "float", "lora", "demos"}
    assert isinstance(table["prompt"], PromptProposer) and table["prompt"].config.rounds == 1
    assert isinstance(table["choice"], ChoiceProposer) and table["choice"].config.strategy == "argmax"
    assert isinstance(proposer_for(KnobSpec("k", IntRange(1, 3, node="n"), 1), table), JointProposer)
    with pytest.raises(ProposalError, match="no proposer"):
        proposer_for(STYLE, {})


def test_kinds_configured_alike_share_one_proposer_and_are_grouped():
    """One JointProposer serves choice, int and float knobs, so a node's knobs of those
    kinds reach it in one group; a kind configured differently gets its own instance."""
    table = build_proposers()
    assert table["choice"] is table["int"] is table["float"] and table["prompt"] is not table["choice"]
    window = KnobSpec("window", IntRange(1, 5, node="answer"), 2)
    prompt = KnobSpec("prompt", Prompt(node="answer"), "Answer.")
    groups = proposer_groups([STYLE, prompt, window], table)
    assert [(type(p).__name__, [k.name for k in ks]) for p, ks in groups] == [
        ("JointProposer", ["style", "window"]), ("PromptProposer", ["prompt"])]
    apart = build_proposers({"int": {"n_trials": 4}})
    assert apart["int"] is not apart["choice"] and apart["choice"] is apart["float"]
    assert apart["int"].config.n_trials == 4


def test_overrides_by_instance_class_or_settings():
    mine = FirstOption()
    assert build_proposers(overrides={"choice": mine})["choice"] is mine
    assert type(build_proposers(overrides={"choice": FirstOption})["choice"]) is FirstOption
    use = "tests/proposers/test_proposer_registry.py:FirstOption"
    by_name = build_proposers({"choice": {"use": use, "temperature": 2}})
    assert type(by_name["choice"]).__name__ == "FirstOption" and by_name["choice"].config.temperature == 2


@pytest.mark.parametrize(("settings", "overrides", "message"), [
    ({"choice": {"strateg": "x"}}, None, r"unknown proposers.choice setting\(s\) \['strateg'\]"),
    ({"choice": {"objective": "x"}}, None, "proposers.choice.objective"),
    ({"prompt": {"rounds": "two"}}, None, "proposers.prompt.rounds"),
    ({"numbers": {}}, None, "no knob kind 'numbers'"),
    ({"choice": {"use": "optimas_lg.errors:SettingsError"}}, None, "not a Proposer subclass"),
    (None, {"prompt": FirstOption()}, "handles \\['choice'\\] knobs, not 'prompt'"),
    (None, {"choice": object()}, "expected a Proposer instance or subclass"),
])
def test_bad_settings_name_the_setting(settings, overrides, message):
    with pytest.raises(SettingsError, match=message):
        build_proposers(settings, overrides)

"""Settings are checked at the edge: every section and proposer rejects unknown names,
wrong types and invalid values with a ``SettingsError`` naming the setting, before a job
exists; the CLI prints it in one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from optimas_lg.api import optimize
from optimas_lg.cli import app
from optimas_lg.errors import SettingsError
from optimas_lg.loop.config import OptimizeConfig
from optimas_lg.store import models as m
from tests.graphs import lookup

BAD = [
    ({"speed": 2}, r"unknown optimize setting\(s\) \['speed'\]"),
    ({"gate": {"min_examples": 5, "prune": True}}, r"unknown optimize.gate setting\(s\) \['prune'\]"),
    ({"budget": {"max_iterations": "three"}}, "optimize.budget.max_iterations"),
    ({"pairs": {"samples": 0}}, "optimize.pairs"),
    ({"lrf": {"pooling": "max"}}, "optimize.lrf.pooling"),
    ({"kinds": ["prompts"]}, r"unknown knob kinds \['prompts'\]"),
    ({"proposers": {"choice": {"strateg": "x"}}}, r"unknown proposers.choice setting\(s\) \['strateg'\]"),
    ({"proposers": {"numeric": {}}}, "no knob kind 'numeric'"),
    ({"pairs_plan_accuracy": 0.5}, r"pairs_plan_accuracy must be in \(0.5, 1\] or null, got 0.5"),
    ({"system_round_share": 0}, r"system_round_share must be in \(0, 1\], got 0"),
    (["budget"], "must be an object"),
]


@pytest.mark.parametrize(("settings", "message"), BAD)
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(SettingsError, match=message):
        OptimizeConfig.from_dict(settings)


def test_settings_round_trip():
    config = OptimizeConfig.from_dict({"budget": {"max_iterations": 2}, "proposers": {"prompt": {"rounds": 1}}})
    assert OptimizeConfig.from_dict(config.to_dict()) == config


def test_no_job_is_created_for_bad_settings(store):
    examples = lookup.examples()
    config = OptimizeConfig(proposers={"choice": {"objective": "best"}})
    with pytest.raises(SettingsError, match="proposers.choice.objective"):
        optimize(lookup.builder, examples, lookup.metric, store=store, settings=config)
    with pytest.raises(SettingsError, match="no knob kind"):
        optimize(lookup.builder, examples, lookup.metric, store=store, proposers={"numbers": object()})
    assert store.select(m.Job) == []


@pytest.mark.parametrize(("content", "message"), [
    ('{"proposers": {"choice": {"strateg": "x"}}}', "unknown proposers.choice setting"),
    ("{not json", "not JSON"),
    (None, "cannot read it"),
])
def test_cli_settings_errors_are_one_line(tmp_path, store, content, message):
    settings = tmp_path / "settings.json"
    if content is not None:
        settings.write_text(content)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in lookup.examples()))
    result = CliRunner().invoke(app, ["optimize", "tests/graphs/lookup.py:builder", "--data", str(data), "--metric",
                                      "tests/graphs/lookup.py:metric", "--labels", "answer", "--settings",
                                      str(settings), "--store", store.url])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert store.select(m.Job) == []

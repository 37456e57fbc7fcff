"""One behaviour everywhere: the CLI, the Python API and Studio take the same settings under
the same names (seed, warm start, budget limits, comma-separated field names) and reach
the same decisions and final config for the same seed and data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optimas_lg.api import optimize
from optimas_lg.cli import app
from optimas_lg.data import load_examples
from optimas_lg.errors import DataError, KnobError, SettingsError
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.report import load_history
from optimas_lg.store import Store, queries
from optimas_lg.studio import graph as studio_graph
from tests.graphs import lookup

TARGET, METRIC = "tests/graphs/lookup.py:builder", "tests/graphs/lookup.py:metric"
SETTINGS = {"gate": {"min_examples": 5}, "lrf": {"epochs": 2, "max_tokens": 64, "progress": False},
            "pairs_plan_accuracy": None,
            "pairs": {"samples": 3, "calls_per_node": 8}, "write_report": False}
SEED, START = 7, {"style": "plain"}  # the warm start fixes one knob; the loop must find top_k


@pytest.fixture()
def files(tmp_path) -> dict[str, Path]:
    examples = lookup.examples()
    paths = {"train": tmp_path / "train.jsonl", "val": tmp_path / "val.jsonl", "settings": tmp_path / "s.json",
             "config": tmp_path / "start.json"}
    for name, part in (("train", examples[:12]), ("val", examples[12:])):
        paths[name].write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in part))
    paths["settings"].write_text(json.dumps(SETTINGS))
    paths["config"].write_text(json.dumps(START))
    return paths


def _outcome(store: Store, job_id: int) -> tuple:
    """What must not depend on the entry point: the decisions, the scores, the final config."""
    history = load_history(store, job_id)
    decisions = [(d.iteration, d.record.node, d.record.changes, d.record.accepted, d.record.val_proposed)
                 for d in history.decisions]
    final = history.final
    assert final is not None, f"job {job_id} did not finish"
    start = store.get(queries.m.ConfigVersion, final.initial_config_id).values
    best = store.get(queries.m.ConfigVersion, final.best_config_id).values
    return decisions, final.val_before, final.val_after, start, best


@pytest.mark.slow  # three small jobs: ~90 s of CPU
def test_cli_api_and_studio_reach_the_same_result(files, store, capfd):
    cli = CliRunner().invoke(app, [
        "optimize", TARGET, "--data", str(files["train"]), "--val", str(files["val"]), "--metric", METRIC,
        "--inputs", "question", "--labels", "answer", "--settings", str(files["settings"]),
        "--config", str(files["config"]), "--seed", str(SEED), "--max-iterations", "2", "--patience", "5",
        "--max-system-runs", "400", "--store", store.url, "--json"])
    assert cli.exit_code == 0, cli.output
    cli_job = json.loads(cli.stdout)["job_id"]

    train, val = (load_examples(files[n], ["question"], ["answer"]) for n in ("train", "val"))
    api_job = optimize(TARGET, train, lookup.metric, valset=val, config=START, settings=SETTINGS, seed=SEED,
                       max_iterations=2, patience=5, max_system_runs=400, store=store, progress=False).job_id
    assert "baseline" not in capfd.readouterr().err  # progress=False silences the API's progress lines

    # Studio: the library's optimizer graph, invoked with the assistant's context as a dict
    state = studio_graph.invoke({}, context={
        "target": TARGET, "metric": METRIC, "train": str(files["train"]), "val": str(files["val"]),
        "inputs": ["question"], "labels": ["answer"], "store": store.url, "settings": SETTINGS, "config": START,
        "seed": SEED, "max_iterations": 2, "patience": 5, "max_system_runs": 400}, config={"recursion_limit": 1000})
    studio_job = state["job_id"]

    outcomes = [_outcome(store, job) for job in (cli_job, api_job, studio_job)]
    assert outcomes[0] == outcomes[1] == outcomes[2]
    decisions, _, _, start, best = outcomes[0]
    assert start == {"top_k": 1, "style": "plain"}  # warm-started, not the defaults (style "shout")
    assert len(decisions) == 2 and best["style"] == "plain"
    configs = [store.get(queries.m.Job, j).meta["config"] for j in (cli_job, api_job, studio_job)]
    assert all(c["seed"] == SEED and c["budget"]["max_system_runs"] == 400 for c in configs)


def test_comma_separated_and_repeated_field_names_agree():
    assert JobSpec("t", "m", "d", inputs=["question,context"], labels=["answer", "hops, support"]).labels == \
        ["answer", "hops", "support"]
    assert JobSpec("t", "m", "d", inputs=["question,context"]).inputs == ["question", "context"]


def test_an_optimize_config_passed_as_config_says_to_use_settings(store):
    with pytest.raises(SettingsError, match=r"settings=\.\.\."):
        optimize(lookup.builder, lookup.examples(), lookup.metric, config=OptimizeConfig(), store=store)


@pytest.mark.parametrize("start, says", [({"top_k": 9}, "outside [1, 3]"), ({"depth": 2}, "unknown knob 'depth'")])
def test_a_warm_start_outside_the_knobs_is_refused_before_a_job_exists(store, start, says):
    with pytest.raises(KnobError, match=says.replace("[", r"\[").replace("]", r"\]")):
        optimize(lookup.builder, lookup.examples(), lookup.metric, config=start, store=store)
    assert queries.latest_job(store, "optimize") is None


def test_an_unknown_budget_keyword_names_the_known_ones(store):
    with pytest.raises(SettingsError, match="max_runs.*max_system_runs"):
        optimize(lookup.builder, lookup.examples(), lookup.metric, store=store, max_runs=3)


def test_cli_warm_start_and_seed_are_recorded_and_errors_are_one_line(files, store):
    bad = CliRunner().invoke(app, ["optimize", TARGET, "--data", str(files["train"]), "--metric", METRIC,
                                   "--config", '{"top_k": 0}', "--store", store.url])
    assert bad.exit_code == 1 and "outside [1, 3]" in bad.output and "Traceback" not in bad.output


def test_help_names_job_id_and_the_store_under_the_home(monkeypatch, tmp_path):
    from optimas_lg.cli.common import store_help

    out = CliRunner().invoke(app, ["optimize", "--help"], terminal_width=250).output
    assert "JOB_ID" in out and "RUN_ID" not in out
    assert "--max-system-runs" in out and "--seed" in out and "--config" in out
    monkeypatch.setenv("OPTIMAS_LG_HOME", str(tmp_path / "elsewhere"))
    assert f"here sqlite:///{tmp_path / 'elsewhere' / 'optimas.db'}" in store_help()
    assert not (tmp_path / "elsewhere").exists()  # showing the default creates nothing


def test_a_resumed_job_reads_its_own_files_from_anywhere_and_refuses_changed_data(files, store, monkeypatch,
                                                                                 tmp_path):
    from optimas_lg.loop.workspace import Workspace

    root = Path.cwd()
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them in the data's folder
    spec = JobSpec(str(root / TARGET.split(":")[0]) + ":builder", str(root / METRIC.split(":")[0]) + ":metric",
                   "train.jsonl", "val.jsonl", inputs=["question"], labels=["answer"])
    job_id = spec.create_job(store, OptimizeConfig())
    stored = JobSpec(**store.get(queries.m.Job, job_id).meta["spec"])
    assert stored.workdir == str(tmp_path) and set(stored.data_sha256) == {"train", "val"}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "train.jsonl").write_text(files["val"].read_text())  # same name, other rows
    monkeypatch.chdir(elsewhere)
    ws = Workspace.from_spec(stored, OptimizeConfig.from_dict(SETTINGS), store)
    assert [e.key for e in ws.trainset] == [e.key for e in lookup.examples()[:12]]

    files["train"].write_text(files["train"].read_text() + files["val"].read_text())
    with pytest.raises(DataError, match=r"train\.jsonl: the train data changed since this job started"):
        Workspace.from_spec(stored, OptimizeConfig.from_dict(SETTINGS), store)


def test_a_key_in_two_splits_is_named_with_both(store):
    examples = lookup.examples()
    with pytest.raises(DataError, match=r"'alda' is in train and val \(set the key field with --key\)"):
        optimize(lookup.builder, examples[:12], lookup.metric, valset=[examples[0], *examples[12:]], store=store,
                 settings=OptimizeConfig.from_dict(SETTINGS))


def _write(path: Path, part: list, key: str | None) -> None:
    """A data file of ``part`` with each example's key under ``key`` (none when ``None``)."""
    path.write_text("".join(json.dumps({**({key: e.key} if key else {}), **e.inputs, **e.labels}) + "\n"
                            for e in part))


def test_train_and_val_files_without_ids_get_keys_apart_and_key_names_another_field(files, store):
    from optimas_lg.loop.workspace import Workspace

    config, examples = OptimizeConfig.from_dict(SETTINGS), lookup.examples()
    for key, spec_key in ((None, None), ("name", "name")):
        _write(files["train"], examples[:12], key)
        _write(files["val"], examples[12:], key)
        spec = JobSpec(TARGET, METRIC, str(files["train"]), str(files["val"]), labels=["answer"], key_field=spec_key)
        ws = Workspace.from_spec(spec, config, store)
        if key is None:  # row numbers, counted apart per file
            assert [e.key for e in ws.trainset[:2]] == ["0", "1"]
            assert [e.key for e in ws.valset[:2]] == ["val:0", "val:1"]
        else:
            assert [e.key for e in ws.trainset] == [e.key for e in examples[:12]]
            assert "name" not in ws.trainset[0].inputs
    assert "--key" in CliRunner().invoke(app, ["optimize", "--help"], terminal_width=250).output


def test_a_named_key_field_missing_from_the_rows_is_refused_not_replaced_by_row_numbers(files, store):
    from optimas_lg.loop.workspace import Workspace

    examples = lookup.examples()
    _write(files["train"], examples[:12], None)
    spec = JobSpec(TARGET, METRIC, str(files["train"]), labels=["answer"], key_field="qid")
    with pytest.raises(DataError, match=r"train.jsonl: row 1 has no field\(s\) \['qid'\]"):
        Workspace.from_spec(spec, OptimizeConfig.from_dict(SETTINGS), store)


def test_dicts_instead_of_examples_are_refused_with_the_way_to_build_examples(store):
    rows = [{"question": e.inputs["question"], "answer": e.labels["answer"]} for e in lookup.examples()]
    with pytest.raises(DataError, match=r"^trainset\[0\] is a dict, not an optimas_lg.Example; make_examples"):
        optimize(lookup.builder, rows, lookup.metric, store=store)
    with pytest.raises(DataError, match=r"^valset\[0\] is a str"):
        optimize(lookup.builder, lookup.examples()[:12], lookup.metric, valset=["a question"], store=store)


def lookup_agent():
    """A factory, as a user's module may export one."""
    return lookup.builder


def test_a_job_started_from_python_names_its_target_in_store_jobs(store):
    """Every unnamed graph is "LangGraph": jobs of different agents were alike in ``store jobs``."""
    from optimas_lg.store import queries

    examples = lookup.examples()
    for target in (lookup.builder, TARGET, lookup_agent, lambda: lookup.builder):
        optimize(target, examples[:10], lookup.metric, valset=examples[10:16], store=store,
                 settings={"gate": {"min_examples": 4}, "kinds": ["choice"]}, max_iterations=1, progress=False)
    assert [j.target for j in reversed(queries.recent_jobs(store, 4))] == [
        "LangGraph (retrieve, answer)", TARGET, f"{__name__}:lookup_agent", "LangGraph (retrieve, answer)"]

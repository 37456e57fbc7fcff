"""The side-by-side harness on a tiny system (tests/graphs/lookup.py, no LLM) with a tiny
budget: the result files, the budget, resuming, and the docs rebuilt from stored results."""

from __future__ import annotations

import json

import pytest

from bench.suite.__main__ import main
from bench.suite.cells import Cell, load
from bench.suite.report import BEGIN, END
from optimas_lg.loop.budget import PROPOSER_TOKENS, SYSTEM_TOKENS
from tests.graphs import lookup

BUDGET = 24  # lookup: 8 train / 6 val / 6 test; optuna gets 4 trials of 6 val runs
METHODS = "unoptimized,optuna,random,gepa"


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite")
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("OPTIMAS_LG_HOME", str(home))
    try:
        assert main(["--systems", "lookup", "--methods", METHODS, "--seeds", "0", "--budget", str(BUDGET),
                     "--out", str(path)]) == 0
    finally:
        mp.undo()
    return path


def _row(out, method):
    return load(Cell("lookup", method, 0, BUDGET).path(out))


def test_a_result_holds_scores_per_example_spend_config_and_versions(out):
    row = _row(out, "optuna")
    assert row["status"] == "done"
    assert row["sizes"] == {"train": 8, "val": 6, "test": 6}
    assert list(row["test"]["scores"]) == [e.key for e in lookup.examples()[14:20]] and row["test"]["n"] == 6
    assert len(row["val"]["scores"]) == 6
    assert row["test"]["mean"] == pytest.approx(sum(row["test"]["scores"].values()) / 6)
    assert set(row["final_knobs"]) == {"top_k", "style"}
    assert set(row["tokens"]) == {"system", "proposer"} and row["tokens"]["proposer"]["total"] == 0
    assert row["versions"]["optuna"] and row["versions"]["python"]
    assert row["wall_seconds"] > 0 and len(row["load_average_start"]) == 3
    assert row["scoring"]["runs"] == 12  # val and test scoring, counted apart from the budget


def test_every_method_stays_within_the_budget_and_its_runs_are_counted(out):
    optuna = _row(out, "optuna")
    assert optuna["system_runs"] == optuna["details"]["trials"] * 6 == BUDGET  # each trial ran the 6 val examples
    for method in ("unoptimized", "optuna", "random"):
        row = _row(out, method)
        assert row["system_runs"] <= BUDGET and row["within_budget"], method
    assert _row(out, "random")["system_runs"] >= 6 + 8  # baseline on val, then the training runs


def test_a_method_that_cannot_apply_is_recorded_as_such(out):
    row = _row(out, "gepa")
    assert row["status"] == "not_applicable" and "Prompt" in row["reason"]


def test_a_done_cell_is_skipped_and_a_missing_or_failed_one_runs_again(out, tmp_path, monkeypatch):
    monkeypatch.setenv("OPTIMAS_LG_HOME", str(tmp_path))
    before = {p.name: p.read_text() for p in out.glob("*.json")}
    failed = Cell("lookup", "random", 0, BUDGET).path(out)
    failed.write_text(json.dumps({**json.loads(failed.read_text()), "status": "error"}))
    Cell("lookup", "unoptimized", 0, BUDGET).path(out).unlink()
    assert main(["--systems", "lookup", "--methods", METHODS, "--seeds", "0", "--budget", str(BUDGET),
                 "--out", str(out)]) == 0
    after = {p.name: p.read_text() for p in out.glob("*.json")}
    assert after.keys() == before.keys()
    rerun = {Cell("lookup", m, 0, BUDGET).path(out).name for m in ("random", "unoptimized")}
    for name in after.keys() - rerun:
        assert after[name] == before[name], f"{name} was run again"
    for name in rerun:  # the failed cell was marked "error" above: "done" means it ran again
        assert json.loads(after[name])["status"] == "done"


def test_markdown_and_plot_come_from_stored_results_only(out, tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\n{BEGIN}\nold\n{END}\n\n## History\nkept\n")
    assert main(["--markdown", "--plot", "--budget", str(BUDGET), "--out", str(out), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "old" not in text and text.endswith("## History\nkept\n")
    optuna = _row(out, "optuna")
    line = next(line for line in text.splitlines() if line.startswith("| optuna |"))
    assert f"| 1 | {optuna['test']['mean']:.3f} |" in line
    assert "| gepa | 0 of 1 | not applicable" in text
    assert "qwen2.5-coder-0.5b" in text  # the fair terms name the proposer LM
    assert (out / "gain_vs_runs.png").stat().st_size > 0


def test_a_config_already_scored_takes_the_stored_scores_instead_of_running_again(out, monkeypatch, tmp_path):
    monkeypatch.setenv("OPTIMAS_LG_HOME", str(tmp_path))
    assert main(["--systems", "lookup", "--methods", "unoptimized", "--seeds", "1", "--budget", str(BUDGET),
                 "--out", str(out)]) == 0
    first, again = _row(out, "unoptimized"), load(Cell("lookup", "unoptimized", 1, BUDGET).path(out))
    assert again["scoring"]["reused_from"] == Cell("lookup", "unoptimized", 0, BUDGET).path(out).name
    assert again["scoring"]["runs"] == 0 and again["test"] == first["test"] and again["val"] == first["val"]
    assert "reused_from" not in first["scoring"] and first["scoring"]["runs"] == 12


def test_scores_are_reused_only_under_the_same_config_code_and_versions(out):
    from bench.suite.reuse import scored_before

    row = _row(out, "unoptimized")
    assert scored_before(out, row, row["final_knobs"])[0].startswith("lookup.unoptimized.")
    other = {**row["final_knobs"], "top_k": row["final_knobs"]["top_k"] + 1}
    assert scored_before(out, row, other) is None or scored_before(out, row, other)[1]["final_knobs"] == other
    assert scored_before(out, {**row, "source_digest": "edited"}, row["final_knobs"]) is None
    assert scored_before(out, {**row, "versions": {**row["versions"], "torch": "0"}}, row["final_knobs"]) is None
    assert scored_before(out, {**row, "sizes": {**row["sizes"], "test": 5}}, row["final_knobs"]) is None


def test_a_loop_cell_that_failed_midway_resumes_its_job_instead_of_starting_over(tmp_path, monkeypatch):
    """A paper-system loop cell outlasts a session: the next attempt continues the job."""
    from optimas_lg.loop import nodes

    monkeypatch.setenv("OPTIMAS_LG_HOME", str(tmp_path / "home"))
    out, real = tmp_path / "out", nodes.train_lrf

    def train_lrf(state, runtime):  # the loop names its nodes after their functions
        raise RuntimeError("the session ended")

    args = ["--systems", "lookup", "--methods", "random", "--seeds", "0", "--budget", str(BUDGET), "--out", str(out)]
    monkeypatch.setattr(nodes, "train_lrf", train_lrf)
    main(args)
    failed = load(Cell("lookup", "random", 0, BUDGET).path(out))
    assert failed["status"] == "error" and "the session ended" in failed["error"]
    (work,) = (tmp_path / "home" / "suite").glob("*/lookup.random.*")
    monkeypatch.setattr(nodes, "train_lrf", real)
    assert main(args) == 0
    row = load(Cell("lookup", "random", 0, BUDGET).path(out))
    assert row["status"] == "done" and row["details"]["resumed_job"] == 1
    assert row["system_runs"] >= 6 + 8  # the first attempt's baseline and collect runs count
    assert not work.exists()  # a done cell's job is not kept
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"{BEGIN}\n{END}\n")
    assert main(["--markdown", "--budget", str(BUDGET), "--out", str(out), "--doc", str(doc)]) == 0
    assert "min (1 resumed) |" in next(line for line in doc.read_text().splitlines() if line.startswith("| random |"))


def test_a_seed_that_failed_shows_beside_the_seeds_that_ran(out, tmp_path):
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(out, copy)
    failed = {**_row(out, "optuna"), "seed": 1, "status": "error", "error": "AdapterParseError: no fields parsed"}
    Cell("lookup", "optuna", 1, BUDGET).path(copy).write_text(json.dumps(failed))
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"{BEGIN}\n{END}\n")
    assert main(["--markdown", "--budget", str(BUDGET), "--out", str(copy), "--doc", str(doc)]) == 0
    assert "| optuna | 1 of 2 (seed 1: AdapterParseError) |" in doc.read_text()


def test_proposer_tokens_are_the_prompt_writers_own_not_every_request_to_its_model():
    from bench.suite.report import _tokens

    spent = {"system": {"total": 100}, "proposer": {"total": 40}}  # 40 tokens to the proposer model
    assert _tokens({"method": "optuna", "tokens": spent}) == (140, 0)  # a node switched to that model
    assert _tokens({"method": "gepa", "tokens": spent}) == (100, 40)  # its reflection LM
    own = {"details": {"job_tokens": {PROPOSER_TOKENS: 30, SYSTEM_TOKENS: 100}}}
    assert _tokens({"method": "optimas", "tokens": spent, **own}) == (110, 30)  # 10 from a node on that model
    resumed = {"details": {**own["details"], "resumed_job": 3}}
    assert _tokens({"method": "optimas", "tokens": spent, **resumed}) == (100, 40)  # counts of different attempts

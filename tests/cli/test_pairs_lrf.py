"""``optimas-lg pairs``, ``lrf train``, ``lrf eval`` and ``serve`` on the lookup graph (real
LangGraph, store and MiniLM backbone; no LLM). The judge runs on a fake chat model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from typer.testing import CliRunner

from optimas_lg.cli import app
from optimas_lg.lrf import OVERALL, evaluate_checkpoint
from optimas_lg.lrf.collect import stored_pairs
from optimas_lg.store import models as m
from tests.graphs import lookup

GRAPH = "tests/graphs/lookup.py"


@pytest.fixture()
def data(tmp_path) -> Path:
    path = tmp_path / "lookup.jsonl"
    path.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in lookup.examples()))
    return path


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout  # model-loading progress goes to stderr


def _pairs(data: Path, store, *extra: str) -> str:
    return _cli("pairs", f"{GRAPH}:builder", "--data", str(data), "--metric", f"{GRAPH}:metric", "--labels", "answer",
               "--config", '{"style": "plain"}', "--samples", "3", "--calls-per-node", "12", "--store", store.url,
               *extra)


@pytest.fixture()
def trained(data, store) -> int:
    job_id = json.loads(_pairs(data, store, "--json"))["job_id"]
    _cli("lrf", "train", str(job_id), "--epochs", "1", "--max-tokens", "64", "--store", store.url)
    return job_id


def test_pairs_stores_pairs_and_prints_a_table(data, store):
    out = _pairs(data, store)
    assert "calls used" in out and "failed candidates" in out
    job = store.select(m.Job)[-1]
    assert job.kind == "pairs" and job.status == "done"
    assert {"spec", "config", "knobs"} <= set(job.meta)
    result = job.meta["result"]
    assert f"{result['system_runs']} system runs in all; job {job.id}" in " ".join(out.split())
    stored = stored_pairs(store, job.id)
    counts = {n: sum(p.node == n for p in stored) for n in ("retrieve", "answer")}
    assert counts == {n: result["nodes"][n]["pairs"] for n in counts} and counts["retrieve"] > 0
    assert all(p.chosen_score > p.rejected_score for p in stored)
    assert result["nodes"]["retrieve"]["calls"] == 12
    # rollouts: one downstream run per candidate, on top of one recorded run per example
    candidates = sum(r["candidates"] + r["failed_candidates"] for r in result["nodes"].values())
    assert result["system_runs"] == len(lookup.examples()) + candidates


def test_pairs_for_listed_nodes_only(data, store):
    result = json.loads(_pairs(data, store, "--nodes", "retrieve", "--json"))
    assert list(result["nodes"]) == ["retrieve"]
    assert {p.node for p in stored_pairs(store, result["job_id"])} == {"retrieve"}
    bad = CliRunner().invoke(app, ["pairs", f"{GRAPH}:builder", "--data", str(data), "--metric", f"{GRAPH}:metric",
                                   "--nodes", "nope", "--store", store.url])
    assert bad.exit_code == 1 and "nope" in bad.output


def test_pairs_llm_samples_for_a_node_with_no_knob_variety(tmp_path, store):
    from tests.graphs import sampled

    data = tmp_path / "sampled.jsonl"
    data.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in sampled.examples()))
    graph = "tests/graphs/sampled.py"

    def run(*extra: str) -> dict:
        return json.loads(_cli("pairs", f"{graph}:builder", "--data", str(data), "--metric", f"{graph}:metric",
                               "--labels", "answer", "--samples", "2", "--store", store.url, "--json", *extra))

    off = run("--llm-samples", "0")["nodes"]["rewrite"]
    assert off["llm_candidates"] == 0 and off["pairs"] == 0
    result = run("--llm-samples", "2", "--temperature", "0.7")
    row = result["nodes"]["rewrite"]
    assert row["llm_candidates"] > 0 and row["pairs"] > 0
    assert row["candidates"] == row["calls"] + row["llm_candidates"]
    settings = store.get(m.Job, result["job_id"]).meta["config"]["pairs"]
    assert (settings["llm_samples"], settings["temperature"]) == (2, 0.7)


def test_lrf_train_registers_a_checkpoint_and_eval_reuses_its_split(trained, store):
    (row,) = store.select(m.LRFCheckpoint, m.LRFCheckpoint.job_id == trained)
    assert Path(row.path, "meta.json").is_file()
    held = set(row.metrics["eval_examples"])
    trained_on = {p.example_key for p in stored_pairs(store, trained)} - held
    assert held and trained_on  # split by example: no example on both sides
    assert 0.0 <= row.metrics["accuracy"][OVERALL] <= 1.0

    out = _cli("lrf", "eval", str(trained), "--store", store.url)
    assert "LRF acc" in out and "judge" not in out
    result = json.loads(_cli("lrf", "eval", str(trained), "--json", "--store", store.url))
    assert result["lrf"] == row.metrics["accuracy"]  # the same held-out pairs as at training
    assert result["eval_pairs"] == sum(p.example_key in held for p in stored_pairs(store, trained))


def test_lrf_eval_with_a_judge(trained, store):
    result, table = evaluate_checkpoint(store, trained, judge=FakeListChatModel(responses=["A"]), goal="be right")
    assert set(result["judge"]["accuracy"]) == set(result["lrf"])
    assert not any(result["judge"]["unparsed"].values())  # a bare "A" always parses
    assert "judge acc" in table.splitlines()[0]


def test_lrf_errors_are_one_line(data, store):
    job_id = json.loads(_pairs(data, store, "--json"))["job_id"]
    missing = CliRunner().invoke(app, ["lrf", "eval", str(job_id), "--store", store.url])
    assert missing.exit_code == 1 and f"lrf train {job_id}" in missing.output
    nojob = CliRunner().invoke(app, ["lrf", "train", "999", "--store", store.url])
    assert nojob.exit_code == 1 and "no job 999" in nojob.output


def test_serve_help():
    out = _cli("serve", "--help")
    assert "--port" in out and "--model" in out

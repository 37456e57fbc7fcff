"""32 processes record runs into one store at the same moment, first while it is being
created, then once it exists: every row arrives, under its own job and run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from optimas_lg.data import Example
from optimas_lg.store import Store
from optimas_lg.store import models as m
from tests.graphs import lookup
from tests.reliability.conftest import METRIC, TARGET, cli_env, write_jsonl
from tests.reliability.harness import launch

pytestmark = pytest.mark.reliability

WRITERS, EXAMPLES = 32, 4


def _wave(store_url: str, folder: Path, wave: str) -> dict[str, list[str]]:
    """Start WRITERS ``optimas-lg run`` processes together; returns each one's example keys by data file."""
    people = lookup.examples()
    expected, running = {}, []
    start_at = time.time() + 3  # forking 32 children takes a while: all start recording together
    for i in range(WRITERS):
        examples = [Example(f"{wave}{i}-{e.key}", e.inputs, e.labels)
                    for e in people[i % 5 * EXAMPLES:(i % 5 + 1) * EXAMPLES]]
        data = write_jsonl(folder / f"{wave}{i}.jsonl", examples)
        expected[str(data)] = [e.key for e in examples]
        args = ["run", TARGET, "--data", str(data), "--metric", METRIC, "--labels", "answer", "--config",
                json.dumps({"top_k": 1 + i % 3}), "--store", store_url, "--json"]
        running.append(launch(args, cli_env(folder / "home"), folder / f"{wave}{i}", start_at=start_at))
    outcomes = [r.wait(180) for r in running]
    failed = [(r.args[3], o.code, o.stderr[-500:]) for r, o in zip(running, outcomes) if o.code != 0]
    assert failed == []
    assert all(json.loads(o.stdout)["n_runs"] == EXAMPLES for o in outcomes)
    return expected


def _check(store: Store, expected: dict[str, list[str]]) -> None:
    """Each writer's job holds exactly its runs, each run exactly its own node calls, none failed."""
    jobs = {j.meta["data"]: j for j in store.select(m.Job) if j.meta.get("data") in expected}
    assert sorted(jobs) == sorted(expected)
    for data, job in jobs.items():
        runs = store.select(m.Run, m.Run.job_id == job.id)
        assert job.status == "done" and sorted(r.example_key for r in runs) == sorted(expected[data])
        config = store.get(m.ConfigVersion, runs[0].config_id).values
        for run in runs:
            name = run.inputs["question"].split()[2]
            assert run.example_key.endswith(name) and run.status == "done" and run.config_id == job.meta["config_id"]
            calls = {c.node: c for c in store.select(m.NodeCall, m.NodeCall.run_id == run.id,
                                                     m.NodeCall.kind == "node")}
            assert sorted(calls) == ["answer", "retrieve"]
            assert calls["retrieve"].inputs["question"] == calls["answer"].inputs["question"] == run.inputs["question"]
            assert len(calls["retrieve"].output["facts"]) == config["top_k"] == calls["retrieve"].knobs["top_k"]
            assert calls["answer"].output["answer"] == run.output["answer"]


@pytest.mark.timeout(900)
def test_32_writers_on_a_new_then_an_existing_store(store_url, tmp_path):
    first = _wave(store_url, tmp_path, "new")  # the store does not exist yet: all 32 create it at once
    second = _wave(store_url, tmp_path, "old")
    with Store(store_url) as store:
        _check(store, first)
        _check(store, second)
        assert store.count(m.Run) == 2 * WRITERS * EXAMPLES
        assert store.count(m.Job) == 2 * WRITERS

"""The commands that record into a store, on a PostgreSQL store (a real server the tests start)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from optimas_lg.cli import app
from optimas_lg.lrf.collect import stored_pairs
from optimas_lg.store import Store
from optimas_lg.store import models as m
from tests.graphs import lookup

GRAPH = "tests/graphs/lookup.py"


def test_run_and_pairs_record_into_postgres(postgres_server, home, tmp_path):
    url = postgres_server.create_database()
    data = tmp_path / "lookup.jsonl"
    data.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in lookup.examples()))
    common = ["--data", str(data), "--metric", f"{GRAPH}:metric", "--labels", "answer", "--store", url, "--json"]
    ran = CliRunner().invoke(app, ["run", f"{GRAPH}:builder", *common])
    assert ran.exit_code == 0, ran.output
    paired = CliRunner().invoke(app, ["pairs", f"{GRAPH}:builder", *common, "--config", '{"style": "plain"}',
                                      "--samples", "3", "--calls-per-node", "12"])
    assert paired.exit_code == 0, paired.output
    result = json.loads(paired.stdout)
    with Store(url) as store:
        assert [j.status for j in store.select(m.Job)] == ["done", "done"]
        assert store.count(m.Run) == len(lookup.examples()) + result["system_runs"]
        assert store.count(m.NodeCall, m.NodeCall.run_id.in_([r.id for r in store.select(m.Run)])) > 0
        assert len(stored_pairs(store, result["job_id"])) == sum(n["pairs"] for n in result["nodes"].values()) > 0

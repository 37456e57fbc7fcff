"""The run store, on SQLite and on a real PostgreSQL server: concurrent writers and
openers, payloads kept whole, clear errors on bad stores, private files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid

import pytest

from optimas_lg.errors import SchemaVersionError, StoreError
from optimas_lg.store import SCHEMA_VERSION, Store
from optimas_lg.store import models as m


def _run(store: Store) -> str:
    run_id = str(uuid.uuid4())
    store.insert_many(m.Run, [{"id": run_id, "job_id": store.create_job("test")}])
    return run_id


def test_concurrent_writers_lose_nothing(store):
    run_id = _run(store)
    threads, per_thread = 16, 1000

    def write(t: int) -> None:
        for i in range(per_thread):
            store.writer.put(m.NodeCall, {"id": f"{t}-{i}", "run_id": run_id, "node": f"n{t}",
                                          "step": i, "inputs": {"t": t, "i": i}, "output": {"v": i * t}})

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    store.writer.flush()

    assert store.count(m.NodeCall) == threads * per_thread
    rows = store.select(m.NodeCall, m.NodeCall.node == "n7")
    assert len(rows) == per_thread
    assert all(r.inputs == {"t": 7, "i": r.step} and r.output == {"v": r.step * 7} for r in rows)
    if store.dialect == "sqlite":
        with sqlite3.connect(store.engine.url.database) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_large_payload_is_stored_whole(store):
    run_id = _run(store)
    big = {"text": "x" * 2_000_000, "nested": [{"k": i} for i in range(10_000)]}
    store.insert_many(m.NodeCall, [{"id": "big", "run_id": run_id, "node": "a", "output": big}])
    assert store.get(m.NodeCall, "big").output == big


def test_writer_failure_is_reported_not_swallowed(store):
    store.writer.put(m.NodeCall, {"id": "orphan", "run_id": "no-such-run", "node": "a"})
    with pytest.raises(StoreError, match="writer failed"):
        store.writer.flush()
    with pytest.raises(StoreError, match="writer failed"):
        store.close()


def test_config_versions_keep_lineage(store):
    first = store.add_config({"top_k": 3})
    second = store.add_config({"top_k": 5}, parent_id=first, note="accepted")
    assert [c.values for c in store.config_lineage(second)] == [{"top_k": 5}, {"top_k": 3}]


def test_info_counts_tables(store):
    _run(store)
    info = store.info()
    assert info.schema_version == SCHEMA_VERSION
    assert info.tables["runs"] == 1 and info.tables["jobs"] == 1 and info.tables["node_calls"] == 0
    assert info.size_bytes and info.size_bytes > 0


def test_bad_url_raises_clear_error():
    with pytest.raises(StoreError, match="cannot use store URL"):
        Store("nosuchdialect://x/y")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_raises_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(StoreError, match="not writable"):
        Store(f"sqlite:///{folder / 'x.db'}")


def test_read_only_filesystem_raises_clear_error():
    # /proc is read-only even for root, unlike permission bits
    with pytest.raises(StoreError, match="cannot (open store|create the folder)"):
        Store("sqlite:////proc/optimas-test.db")


def test_path_under_a_file_raises_clear_error(tmp_path):
    # root bypasses permission bits, so make the path unusable in a way root can't
    # ignore: a database path whose parent is a regular file.
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError):
        Store(f"sqlite:///{blocker / 'x.db'}")


def test_schema_mismatch_raises_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url).close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("UPDATE schema_info SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError, match="schema version 999"):
        Store(url)


def test_cli_store_info_json(home):
    out = subprocess.run([sys.executable, "-m", "optimas_lg.cli.main", "store", "info", "--json"],
                         capture_output=True, text=True, check=True, env={**os.environ}).stdout
    data = json.loads(out)
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(data["tables"]) >= {"runs", "node_calls", "llm_calls", "preference_pairs"}

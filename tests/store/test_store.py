"""The run store, on SQLite and on a real PostgreSQL server: concurrent writers and
openers, payloads kept whole, clear errors on bad stores, private files."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import psutil
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from optimas_lg.cli import app
from optimas_lg.errors import JobRunningError, SchemaVersionError, StoreError
from optimas_lg.store import SCHEMA_VERSION, Store
from optimas_lg.store import models as m


def _run(store: Store) -> str:
    run_id = str(uuid.uuid4())
    store.insert_many(m.Run, [{"id": run_id, "job_id": store.create_job("test")}])
    return run_id


@pytest.mark.reliability
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


def test_long_names_and_keys_are_stored_whole(store):
    """PostgreSQL enforces VARCHAR lengths (SQLite does not): a long example key or node name
    from the user's data must not fail the writer's batch."""
    key, node = "k" * 1000, "a_node_" * 100
    run_id = str(uuid.uuid4())
    store.writer.put(m.Run, {"id": run_id, "example_key": key})
    store.writer.put(m.NodeCall, {"id": "long", "run_id": run_id, "node": node, "task_id": "t" * 500})
    store.writer.flush()
    assert store.get(m.Run, run_id).example_key == key and store.get(m.NodeCall, "long").node == node


def test_what_sqlite_stores_postgresql_stores(store):
    """NaN and Infinity in JSON and NUL in text fail PostgreSQL's own types (and the writer's
    whole batch); the store keeps them on both backends (NUL as U+FFFD on PostgreSQL)."""
    run_id = _run(store)
    store.writer.put(m.NodeCall, {"id": "odd", "run_id": run_id, "node": "a", "output": {"nan": math.nan},
                                  "knobs": {"inf": math.inf, "ninf": -math.inf}, "error": "bad\x00byte"})
    store.writer.flush()
    call = store.get(m.NodeCall, "odd")
    assert math.isnan(call.output["nan"]) and call.knobs == {"inf": math.inf, "ninf": -math.inf}
    assert call.error in ("bad\x00byte", "bad\ufffdbyte")


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


def test_missing_driver_raises_clear_error():
    with pytest.raises(StoreError, match="driver .* is not installed") as err:
        Store("mysql+pymysql://user:s3cret@127.0.0.1/db")
    assert "s3cret" not in str(err.value)


def test_unreachable_postgres_raises_clear_error_without_password(postgres_server):
    with pytest.raises(StoreError, match="cannot open store") as err:
        Store(f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{postgres_server.port}/no_such_db")
    assert "no_such_db" in str(err.value) and "does not exist" in str(err.value)
    assert "s3cret" not in str(err.value)
    with pytest.raises(StoreError, match="cannot open store"):
        Store("postgresql+psycopg://postgres@127.0.0.1:1/db")


def _open_at_once(url: str, barrier: threading.Barrier, results) -> None:
    barrier.wait()
    try:
        with Store(url) as s:
            results.put(s.identity)
    except Exception as exc:
        results.put(f"error: {exc!r}")


@pytest.mark.reliability
def test_new_store_opened_by_many_at_once(store_url):
    """8 processes and 32 threads open one new store at the same moment: all succeed and
    find the same store (issue 14 item 7: `table schema_info already exists`)."""
    ctx = multiprocessing.get_context("fork")  # children share the barrier and skip re-importing
    processes, threads = 8, 32
    barrier, results = ctx.Barrier(processes + threads), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(store_url, barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    workers = [threading.Thread(target=_open_at_once, args=(store_url, barrier, results)) for _ in range(threads)]
    for w in workers:
        w.start()
    opened = [results.get(timeout=120) for _ in range(processes + threads)]
    for w in workers:
        w.join()
    for p in procs:
        p.join()
    assert [o for o in opened if o.startswith("error")] == []
    with Store(store_url) as s:
        assert set(opened) == {s.identity}
        assert s.count(m.SchemaInfo) == 2


def test_identity_is_stable_and_per_store(store_url, tmp_path):
    with Store(store_url) as s:
        identity = s.identity
    with Store(store_url) as s:
        assert s.identity == identity
    with Store(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert other.identity != identity


def test_store_without_identity_gets_one(store_url):
    with Store(store_url) as s, s.engine.begin() as conn:  # a store created before stores had one
        conn.execute(m.SchemaInfo.__table__.delete().where(m.SchemaInfo.key == "store_id"))
    with Store(store_url) as s:
        identity = s.identity
    with Store(store_url) as s:
        assert s.identity == identity


def test_timestamps_are_utc_whatever_the_server_time_zone(store_url):
    if store_url.startswith("postgresql"):  # a session 9 hours ahead of UTC
        store_url += "?options=-c%20TimeZone%3DAsia%2FTokyo"
    with Store(store_url) as s:
        if s.dialect == "postgresql":
            with s.engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "Asia/Tokyo"
        job = s.get(m.Job, s.create_job("test"))
    assert abs(job.created_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)


@pytest.mark.reliability
def test_new_sqlite_store_files_are_private(tmp_path):
    old = os.umask(0)  # not the umask's doing
    try:
        with Store(f"sqlite:///{tmp_path / 'private.db'}") as s:
            _run(s)
            files = [tmp_path / "private.db", tmp_path / "private.db-wal", tmp_path / "private.db-shm"]
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
    finally:
        os.umask(old)


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


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_sqlite_store_is_refused_before_its_first_write(url):
    """Its writer thread would open a database of its own and fail at the first row."""
    with pytest.raises(StoreError, match="in-memory SQLite database"):
        Store(url)


def test_path_under_a_file_raises_clear_error(tmp_path):
    # root bypasses permission bits, so make the path unusable in a way root can't
    # ignore: a database path whose parent is a regular file.
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError):
        Store(f"sqlite:///{blocker / 'x.db'}")


def test_schema_mismatch_raises_clear_error(store_url):
    with Store(store_url) as s, s.engine.begin() as conn:
        conn.execute(update(m.SchemaInfo).where(m.SchemaInfo.key == "schema_version").values(value="999"))
    with pytest.raises(SchemaVersionError, match="schema version 999"):
        Store(store_url)


def test_cli_store_info_json(store_url):
    with Store(store_url) as s:
        _run(s)
    result = CliRunner().invoke(app, ["store", "info", "--json", "--store", store_url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == SCHEMA_VERSION and data["size_bytes"] > 0
    assert set(data["tables"]) >= {"runs", "node_calls", "llm_calls", "preference_pairs"}
    assert data["tables"]["runs"] == 1


def test_cli_store_jobs_lists_the_newest_first(store_url):
    with Store(store_url) as s:
        first = s.create_job("run", "a.py:builder")
        second = s.create_job("optimize", "b.py:builder")
        s.finish_job(first)
    result = CliRunner().invoke(app, ["store", "jobs", "--json", "--store", store_url])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["id"], r["kind"], r["status"], r["target"]) for r in rows] == [
        (second, "optimize", "running", "b.py:builder"), (first, "run", "done", "a.py:builder")]
    assert rows[1]["finished"] is not None and rows[0]["finished"] is None
    limited = CliRunner().invoke(app, ["store", "jobs", "--json", "--limit", "1", "--store", store_url])
    assert [r["id"] for r in json.loads(limited.stdout)] == [second]


def _ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_job_whose_process_died_is_closed_as_interrupted_when_the_store_opens(store):
    dead = store.create_job("optimize", meta={"spec": {"x": 1}})
    alive = store.create_job("optimize")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as sleeper:
        reused = store.create_job("optimize")  # its owner's id now belongs to a later process
        for job, pid, started in ((dead, _ended_pid(), None), (alive, sleeper.pid, None), (reused, sleeper.pid, 1.0)):
            owner = {"host": socket.gethostname(), "pid": pid, "started": started}
            meta = {**store.get(m.Job, job).meta, "owner": owner}
            with store.engine.begin() as conn:
                conn.execute(update(m.Job).where(m.Job.id == job).values(meta=meta))
        mine = store.create_job("optimize")  # owned by this process
        with Store(store.url) as reopened:
            closed = reopened.get(m.Job, dead)
            assert closed.status == "interrupted" and closed.finished_at is not None
            assert closed.meta["error"].endswith("ended without closing the job (killed, or the machine stopped)")
            assert closed.meta["spec"] == {"x": 1}  # nothing else of the job is lost
            assert reopened.get(m.Job, alive).status == reopened.get(m.Job, mine).status == "running"
            assert reopened.get(m.Job, reused).status == "interrupted"
        sleeper.kill()
    store.claim_job(dead)  # resumed: running again, owned by this process, the old error dropped
    resumed = store.get(m.Job, dead)
    assert resumed.status == "running" and "error" not in resumed.meta
    assert resumed.meta["owner"] == {"host": socket.gethostname(), "pid": os.getpid(),
                                     "started": psutil.Process().create_time()}


def test_a_job_running_in_another_live_process_cannot_be_claimed_by_a_second_resume(store):
    """Two processes resuming one job drove it together: the budget spent twice, its
    records interleaved, and the second one's interrupt marked the first one's job."""
    job = store.create_job("optimize")
    store.claim_job(job)  # this process's own running job: claiming it again changes nothing
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        owner = {"host": socket.gethostname(), "pid": other.pid}
        with store.engine.begin() as conn:
            conn.execute(update(m.Job).where(m.Job.id == job).values(meta={"owner": owner}))
        with pytest.raises(JobRunningError, match=rf"^job {job} in store .* is running in process {other.pid} on "):
            store.claim_job(job)
        assert store.get(m.Job, job).meta["owner"] == owner  # untouched
        other.kill()
    with Store(store.url):  # opening a store closes the jobs of ended processes
        pass
    store.claim_job(job)
    assert store.get(m.Job, job).meta["owner"]["pid"] == os.getpid()


def test_a_job_of_a_process_on_another_machine_is_released_by_hand_then_resumed(store):
    job = store.create_job("optimize")
    elsewhere = {"host": "another-machine", "pid": 4242}
    with store.engine.begin() as conn:
        conn.execute(update(m.Job).where(m.Job.id == job).values(meta={"owner": elsewhere}))
    with pytest.raises(JobRunningError, match=rf"`optimas-lg store release {job}` marks it"):
        store.claim_job(job)  # this machine cannot tell whether that process ended
    out = CliRunner().invoke(app, ["store", "release", str(job), "--store", store.url]).output
    assert out.startswith(f"job {job} marked interrupted; continue it with optimas-lg optimize --resume {job}")
    assert store.get(m.Job, job).meta["error"] == "released: process 4242 on another-machine had ended"
    store.claim_job(job)
    out = CliRunner().invoke(app, ["store", "release", str(job), "--store", store.url]).output
    assert out.startswith(f"error: job {job} is running in process {os.getpid()} on ")  # alive here: refused


def test_a_job_its_owner_closed_after_it_was_read_as_orphaned_keeps_its_status(store, monkeypatch):
    """Opening a store closes jobs whose process is gone. A process that finished its job and
    exited between that read and the close had its 'done' overwritten with 'interrupted'
    (seen with 32 concurrent ``optimas-lg run`` processes under load)."""
    from optimas_lg.store.owner import Owner

    job_id = store.create_job("run", "t", {})

    def finished_then_gone(self) -> bool:  # the owner closes the job, then exits
        store.finish_job(job_id, "done", {"n_runs": 4})
        return True

    monkeypatch.setattr(Owner, "gone", finished_then_gone)
    assert store.close_orphaned_jobs() == []
    assert store.get(m.Job, job_id).status == "done"


def test_a_storage_home_that_cannot_be_made_or_a_corrupt_checkpoints_file_is_one_store_error(tmp_path, monkeypatch):
    from optimas_lg.home import storage_dir
    from optimas_lg.store.checkpoints import checkpointer

    taken = tmp_path / "a-file"
    taken.write_text("")
    monkeypatch.setenv("OPTIMAS_LG_HOME", str(taken))
    with pytest.raises(StoreError, match=rf"^cannot create the storage folder {taken} \(File exists\); set "):
        storage_dir()
    (tmp_path / "optimas.db.checkpoints.db").write_text("garbage")
    with Store(f"sqlite:///{tmp_path / 'optimas.db'}") as store, pytest.raises(
            StoreError, match=r"optimas.db.checkpoints.db: file is not a database \(the jobs' other records"):
        with checkpointer(store):
            pass

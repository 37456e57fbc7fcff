"""The LangGraph checkpointer kept with a store: SqliteSaver beside a SQLite store,
PostgresSaver inside a PostgreSQL one; what it saves survives reopening."""

from __future__ import annotations

import os
import stat
import threading
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from optimas_lg.store import Store, checkpointer
from optimas_lg.store.checkpoints import checkpoint_path


class Count(TypedDict):
    n: int


def _graph():
    builder = StateGraph(Count)
    builder.add_node("a", lambda s: {"n": s["n"] + 1})
    builder.add_node("b", lambda s: {"n": s["n"] * 10})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder


THREAD = {"configurable": {"thread_id": "job-1"}}


def test_a_stopped_graph_resumes_after_reopening(store_url):
    with Store(store_url) as store, checkpointer(store) as saver:
        graph = _graph().compile(checkpointer=saver, interrupt_before=["b"])
        assert graph.invoke({"n": 1}, THREAD) == {"n": 2}
        assert graph.get_state(THREAD).next == ("b",)
    with Store(store_url) as store, checkpointer(store) as saver:  # another process or machine
        graph = _graph().compile(checkpointer=saver, interrupt_before=["b"])
        assert graph.get_state(THREAD).values == {"n": 2}
        assert graph.invoke(None, THREAD) == {"n": 20}
        assert graph.get_state(THREAD).next == ()


def test_postgres_checkpoints_live_in_the_store_database(postgres_server):
    with Store(postgres_server.create_database()) as store, checkpointer(store) as saver:
        _graph().compile(checkpointer=saver).invoke({"n": 1}, THREAD)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM checkpoints").scalar() > 0


@pytest.mark.reliability
def test_two_sqlite_stores_never_share_a_thread(tmp_path):
    first, second = Store(f"sqlite:///{tmp_path / 'a.db'}"), Store(f"sqlite:///{tmp_path / 'b.db'}")
    with first, second:
        with checkpointer(first) as saver:
            _graph().compile(checkpointer=saver).invoke({"n": 1}, THREAD)
        with checkpointer(second) as saver:
            assert _graph().compile(checkpointer=saver).get_state(THREAD).values == {}
    assert checkpoint_path(first) == tmp_path / "a.db.checkpoints.db"


def test_sqlite_checkpoint_file_is_private(tmp_path):
    old = os.umask(0)
    try:
        with Store(f"sqlite:///{tmp_path / 'x.db'}") as store, checkpointer(store) as saver:
            _graph().compile(checkpointer=saver).invoke({"n": 1}, THREAD)
            path = checkpoint_path(store)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


@pytest.mark.reliability
def test_many_open_the_checkpoints_of_a_new_store_at_once(store_url):
    """LangGraph's own setup is not safe for concurrent first openers; ours takes turns."""
    barrier, errors = threading.Barrier(8), []

    def open_and_write(i: int) -> None:
        barrier.wait()
        try:
            with Store(store_url) as store, checkpointer(store) as saver:
                _graph().compile(checkpointer=saver).invoke({"n": i}, {"configurable": {"thread_id": f"t{i}"}})
        except Exception as exc:
            errors.append(exc)

    workers = [threading.Thread(target=open_and_write, args=(i,)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with Store(store_url) as store, checkpointer(store) as saver:
        graph = _graph().compile(checkpointer=saver)
        assert [graph.get_state({"configurable": {"thread_id": f"t{i}"}}).values["n"] for i in range(8)] == \
            [(i + 1) * 10 for i in range(8)]

"""LangGraph checkpointers that live with the store they belong to.

A SQLite store keeps its checkpoints in ``<database>.checkpoints.db`` beside its file
(a separate file, so LangGraph's connection never waits on the store's writer); a
PostgreSQL store keeps them in its own database, so a job started on one machine can
resume on another. Two stores therefore never share a checkpoint thread. Threads should
still be keyed by ``Store.identity``: a store deleted and created again at the same path
finds the old file's threads.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from psycopg import Connection, OperationalError
from psycopg.rows import dict_row

from optimas_lg.errors import StoreError
from optimas_lg.store.store import Store, create_private_file

# session advisory lock held while LangGraph's Postgres tables are set up ("olgckpt\0")
_PG_SETUP_LOCK = 0x6F6C67636B707400
_PG_SETUP_WAIT_S = 120.0


def checkpoint_path(store: Store) -> Path | None:
    """The SQLite file holding a SQLite store's checkpoints; None for other stores."""
    db = store.sqlite_path
    return None if db is None else db.with_name(f"{db.name}.checkpoints.db")


@contextmanager
def checkpointer(store: Store) -> Iterator[BaseCheckpointSaver]:
    """A LangGraph checkpointer kept with ``store``, set up and closed on exit.

    Do not exit while a graph compiled with it is still running: its connection closes.
    """
    if store.dialect == "sqlite":
        yield from _sqlite(store)
    elif store.dialect == "postgresql":
        yield from _postgres(store)
    else:
        raise StoreError(f"store {store.display_url!r} uses {store.dialect}; LangGraph checkpoints can be kept only "
                         "with a SQLite or PostgreSQL store")


def _sqlite(store: Store) -> Iterator[BaseCheckpointSaver]:
    path = checkpoint_path(store)
    if path is not None:
        create_private_file(path)
    conn = sqlite3.connect(path or ":memory:", check_same_thread=False, timeout=30)
    try:
        saver = SqliteSaver(conn)
        try:
            saver.setup()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the checkpoints of store {store.display_url!r}: {path}: {exc} (the jobs' "
                             "other records are in the store; without this file no job of it can resume)") from exc
        yield saver
    finally:
        conn.close()


def _postgres(store: Store) -> Iterator[BaseCheckpointSaver]:
    conninfo = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:  # the connection PostgresSaver.from_conn_string makes
        conn = Connection.connect(conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except OperationalError as exc:
        raise StoreError(f"cannot open the checkpoints of store {store.display_url!r}: {exc}") from exc
    with conn:
        saver = PostgresSaver(conn)
        _setup_postgres(saver, store)
        yield saver


def _setup_postgres(saver: PostgresSaver, store: Store) -> None:
    """Run LangGraph's migrations, one opener at a time.

    They are not safe to run concurrently and include ``CREATE INDEX CONCURRENTLY``,
    which waits for every open transaction, so waiters poll a session lock instead of
    blocking inside a statement.
    """
    deadline = time.monotonic() + _PG_SETUP_WAIT_S
    while not saver.conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_PG_SETUP_LOCK,)).fetchone()["ok"]:
        if time.monotonic() > deadline:
            raise StoreError(f"another process has been setting up the checkpoints of store {store.display_url!r} "
                             f"for over {_PG_SETUP_WAIT_S:.0f} s; check it is not stuck, then retry")
        time.sleep(0.05)
    try:
        saver.setup()
    finally:
        saver.conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_SETUP_LOCK,))

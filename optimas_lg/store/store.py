"""The run store: a small repository API over SQLAlchemy for everything optimas-lg persists."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, make_url, select, update
from sqlalchemy.exc import ArgumentError, DatabaseError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from optimas_lg.errors import JobRunningError, SchemaVersionError, StoreError
from optimas_lg.home import default_store_url
from optimas_lg.store import models as m
from optimas_lg.store.owner import Owner
from optimas_lg.store.writer import BatchWriter

_INSERT_ORDER = [m.Job, m.ConfigVersion, m.Run, m.NodeCall, m.LLMCall,
                 m.PreferencePairRow, m.LRFCheckpoint, m.OptimizerEvent]


DATABASE_DOWN = (OperationalError, psycopg.OperationalError, sqlite3.OperationalError)
"""Errors of a store's database server or file that failed mid-command (stopped, restarted, locked)."""


def database_down(exc: BaseException) -> str:
    """One line for a store database that stopped answering (a PostgreSQL server stopped or
    restarted, a SQLite file gone): what was recorded before is kept, and the job resumes."""
    cause = getattr(exc, "orig", None) or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return (f"the store's database failed: {type(cause).__name__}: {first} (what was recorded before "
            "is kept; once it works again, `optimas-lg store jobs` lists the job and `optimas-lg optimize "
            "--resume JOB` continues it)")


@dataclass(frozen=True)
class StoreInfo:
    url: str
    schema_version: int
    size_bytes: int | None
    tables: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "schema_version": self.schema_version,
                "size_bytes": self.size_bytes, "tables": self.tables}


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL waits for other openers
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and readable by its owner only, unless it exists.

    A store holds every recorded message; SQLite gives its -wal and -shm files the
    mode of the database file, so they stay private too.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


_LOCKED_RETRIES = 6  # pauses of 0.1 .. 3.2 s: 6.3 s in all

# pg_advisory_xact_lock key held while a PostgreSQL store is created ("optimas\0")
_PG_SCHEMA_LOCK = 0x6F7074696D617300


class Store:
    """Open (and create if needed) a store at a SQLAlchemy URL.

    SQLite files get WAL mode and a busy timeout so that readers never block the
    single writer. Raises ``StoreError`` for a URL that cannot be used and
    ``SchemaVersionError`` for a store written by another schema version.
    ``identity`` is a stable id written when the store is created, for keying things
    kept outside the store (checkpoint threads, report folders) to it.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_store_url()
        self.engine = self._create_engine(self.url)
        self.display_url = self.engine.url.render_as_string(hide_password=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.identity = self._init_schema()
        self.close_orphaned_jobs()
        self._writer: BatchWriter | None = None
        self._writer_lock = threading.Lock()

    # -- opening --------------------------------------------------------------------
    @classmethod
    def open(cls, store: "Store | str | None" = None) -> "Store":
        """``store`` itself, or a store at that URL (the default store for ``None``)."""
        return store if isinstance(store, Store) else cls(store)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql`` (or another SQLAlchemy dialect name)."""
        return self.engine.dialect.name

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite store; None for an in-memory or server store."""
        db = self.engine.url.database
        if self.dialect != "sqlite" or not db or db == ":memory:":
            return None
        return Path(db).expanduser().resolve()

    @staticmethod
    def _create_engine(url: str) -> Engine:
        try:
            parsed = make_url(url)
            # a server connection can drop between uses (restart, idle timeout)
            engine = create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise StoreError(
                f"cannot use store URL {url!r}: {exc}. Give a SQLAlchemy URL such as "
                "'sqlite:///storage/optimas.db' or 'postgresql+psycopg://user@host/db'."
            ) from exc
        except ImportError as exc:
            shown = parsed.render_as_string(hide_password=True)
            raise StoreError(f"the database driver of store URL {shown!r} is not installed ({exc}). Install it "
                             "or use 'postgresql+psycopg://...', whose driver comes with optimas-lg.") from exc
        if engine.dialect.name == "sqlite":
            db = engine.url.database
            if not db or db == ":memory:" or "mode=memory" in str(engine.url):
                raise StoreError(f"store URL {url!r} is an in-memory SQLite database, which lives in one "
                                 "connection, and the store writes from a thread of its own: give a file, "
                                 "such as 'sqlite:///storage/optimas.db' (a temporary folder does for a test)")
            path = Path(db).expanduser().resolve()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of SQLite store {db!r}: {exc}") from exc
            if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
                raise StoreError(
                    f"SQLite store {db!r} is not writable (read-only file or folder). "
                    "Point --store / OPTIMAS_LG_STORE at a writable location."
                )
            try:
                create_private_file(path)
            except OSError as exc:
                raise StoreError(f"cannot open store {url!r}: cannot create {path}: {exc}") from exc
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def _init_schema(self) -> str:
        """Check the schema version, create the tables of a new store; returns its identity.

        Creation runs in one transaction under a lock (SQLite's write lock, a PostgreSQL
        advisory lock), so concurrent openers of a new store wait for the first one and
        then find it complete. SQLite can refuse at once ("database is locked": the switch
        to WAL mode, or a reader's upgrade, does not wait for the busy timeout), so that
        is retried a few times with a growing pause.
        """
        attempt = 0
        while True:
            try:
                return self._open_schema()
            except StoreError as exc:
                attempt += 1
                if "database is locked" not in str(exc) or attempt == _LOCKED_RETRIES:
                    raise
                time.sleep(0.1 * 2 ** (attempt - 1))

    def _open_schema(self) -> str:
        try:
            with self.engine.connect() as conn:
                facts = self._facts(conn)
            if facts is not None and "store_id" in facts:
                return facts["store_id"]
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif self.dialect == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
                facts = self._facts(conn)
                if facts is None:
                    m.Base.metadata.create_all(conn)
                    facts = {"schema_version": str(m.SCHEMA_VERSION)}
                    conn.execute(insert(m.SchemaInfo), [{"key": "schema_version", "value": facts["schema_version"]}])
                if "store_id" not in facts:  # a new store, or one created before stores had an identity
                    facts["store_id"] = uuid.uuid4().hex
                    conn.execute(insert(m.SchemaInfo), [{"key": "store_id", "value": facts["store_id"]}])
                conn.commit()
            return facts["store_id"]
        except (DatabaseError, InterfaceError) as exc:  # unreachable, refused, or not a database at all
            raise StoreError(f"cannot open store {self.display_url!r}: {exc.orig}") from exc

    def _facts(self, conn: Connection) -> dict[str, str] | None:
        """The store's schema_info rows, None for an empty database; raises if the version differs."""
        tables = set(inspect(conn).get_table_names())
        if "schema_info" not in tables:
            if tables & {t.name for t in m.Base.metadata.sorted_tables}:
                raise SchemaVersionError(
                    f"store {self.display_url!r} has optimas-lg tables but no schema version: it was not "
                    "written by optimas-lg or is damaged. Use a new store file."
                )
            return None
        facts = {key: value for key, value in conn.execute(select(m.SchemaInfo.key, m.SchemaInfo.value))}
        found = facts.get("schema_version")
        if found is None or int(found) != m.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"store {self.display_url!r} has schema version {found}, this optimas-lg uses "
                f"{m.SCHEMA_VERSION}. Use a new store file (--store) or the optimas-lg "
                "version that wrote it."
            )
        return facts

    def session(self) -> Session:
        """A new ORM session (use as a context manager)."""
        return self._sessions()

    @staticmethod
    def insert_order(table: type) -> int:
        return _INSERT_ORDER.index(table)

    # -- writing --------------------------------------------------------------------
    @property
    def writer(self) -> BatchWriter:
        """The store's background batch writer (started once, on first use, by any thread)."""
        with self._writer_lock:
            if self._writer is None:
                self._writer = BatchWriter(self)
            return self._writer

    def insert_many(self, table: type, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows in one transaction (``executemany``)."""
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(table), list(rows))

    def _add(self, obj: Any) -> Any:
        with self.session() as s, s.begin():
            s.add(obj)
        return obj

    def create_job(self, kind: str, target: str = "", meta: dict[str, Any] | None = None) -> int:
        """A new ``running`` job owned by this process (``store.owner``)."""
        return self._add(m.Job(kind=kind, target=target, meta={**(meta or {}), "owner": Owner.current().to_json()})).id

    def claim_job(self, job_id: int) -> None:
        """Mark a job this process resumes ``running`` again, owned by this process (the
        error of how it last stopped is dropped: the job goes on). A job still ``running``
        in another process is refused (``JobRunningError``); the claim is one conditional
        update, so of two processes resuming one job at once only one gets it."""
        job = self.job(job_id)
        owner = Owner.of(job.meta)
        meta = {k: v for k, v in (job.meta or {}).items() if k != "error"}
        free = m.Job.id == job_id if owner is not None and owner.is_current() else m.Job.status != "running"
        with self.engine.begin() as conn:
            claimed = conn.execute(update(m.Job).where(m.Job.id == job_id, free).values(
                status="running", finished_at=None, meta={**meta, "owner": Owner.current().to_json()})).rowcount > 0
        if not claimed:
            owner = Owner.of(self.get(m.Job, job_id).meta)
            by = owner.describe() if owner else "another process"
            raise JobRunningError(f"job {job_id} in store {self.display_url} is running in {by}; resume it once "
                                  "that process has ended (stop it with Ctrl-C or kill: the job is then marked "
                                  "interrupted; if it ended on another machine, `optimas-lg store release "
                                  f"{job_id}` marks it)")

    def release_job(self, job_id: int) -> None:
        """Mark ``interrupted`` a ``running`` job whose process ended where this one cannot
        see it (on another host: ``close_orphaned_jobs`` checks this host only), so it can be
        resumed. A job whose owner is alive on this host is refused."""
        job = self.job(job_id)
        owner = Owner.of(job.meta)
        if job.status != "running":
            raise StoreError(f"job {job_id} in store {self.display_url} is {job.status!r}, not running: "
                             "nothing to release")
        if owner is not None and owner.on_this_host() and not owner.gone():
            raise JobRunningError(f"job {job_id} is running in {owner.describe()}, which is alive; stop that "
                                  "process instead (the job is then marked interrupted)")
        by = owner.describe() if owner else "its process"
        self.finish_job(job_id, "interrupted", {**(job.meta or {}), "error": f"released: {by} had ended"},
                        only_if="running")

    def job(self, job_id: int) -> m.Job:
        """Job ``job_id``; raises ``StoreError`` naming the store when it has no such job."""
        job = self.get(m.Job, job_id)
        if job is None:
            raise StoreError(f"no job {job_id} in store {self.display_url}; `optimas-lg store jobs` lists its jobs")
        return job

    def close_orphaned_jobs(self) -> list[int]:
        """Mark ``interrupted`` every ``running`` job whose owner process is known to be gone
        (killed with SIGKILL, or the machine stopped), so no job stays ``running`` with nobody
        working on it; returns their ids. Run whenever a store is opened."""
        closed = []
        with self._sessions() as session:
            running = session.scalars(select(m.Job).where(m.Job.status == "running")).all()
        for job in running:
            owner = Owner.of(job.meta)
            if owner is None or not owner.gone():
                continue
            error = f"{owner.describe()} ended without closing the job (killed, or the machine stopped)"
            # only if still running: its owner may have closed it, and exited, since it was read
            if self.finish_job(job.id, "interrupted", {**(job.meta or {}), "error": error}, only_if="running"):
                closed.append(job.id)
        return closed

    def finish_job(self, job_id: int, status: str = "done", meta: dict[str, Any] | None = None,
                   only_if: str | None = None) -> bool:
        """Set a job's final status (and meta); with ``only_if``, only when its status is still
        that one. Returns whether the job was changed."""
        values: dict[str, Any] = {"status": status, "finished_at": m.utcnow()}
        if meta is not None:
            values["meta"] = meta
        where = [m.Job.id == job_id] + ([m.Job.status == only_if] if only_if is not None else [])
        with self.engine.begin() as conn:
            return conn.execute(update(m.Job).where(*where).values(**values)).rowcount > 0

    def add_config(self, values: dict[str, Any], target: str = "", parent_id: int | None = None,
                   note: str = "") -> int:
        """Record a new immutable config version; returns its id."""
        return self._add(m.ConfigVersion(values=values, target=target, parent_id=parent_id, note=note)).id

    def add_event(self, job_id: int, kind: str, payload: dict[str, Any] | None = None,
                  node: str | None = None, iteration: int | None = None) -> int:
        return self._add(m.OptimizerEvent(job_id=job_id, kind=kind, node=node, iteration=iteration,
                                          payload=payload or {})).id

    def add_lrf_checkpoint(self, path: str, backbone: str, nodes: list[str],
                           metrics: dict[str, Any] | None = None, job_id: int | None = None) -> int:
        """Register the checkpoint saved at ``path``. Saving to a path again (a step redone
        after a kill) overwrote its files, so it replaces that path's row instead of adding one."""
        values = {"path": path, "backbone": backbone, "nodes": nodes, "metrics": metrics or {}, "job_id": job_id}
        with self.session() as s, s.begin():
            row = s.scalar(select(m.LRFCheckpoint).where(m.LRFCheckpoint.path == path,
                                                         m.LRFCheckpoint.job_id.is_(None) if job_id is None
                                                         else m.LRFCheckpoint.job_id == job_id))
            if row is None:
                row = m.LRFCheckpoint(**values)
                s.add(row)
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        return row.id

    # -- reading --------------------------------------------------------------------
    def get(self, table: type, key: Any) -> Any:
        with self.session() as s:
            return s.get(table, key)

    def select(self, table: type, *where: Any, order_by: Any = None) -> list[Any]:
        """All rows of ``table`` matching the SQLAlchemy ``where`` clauses."""
        stmt = select(table).where(*where)
        stmt = stmt.order_by(order_by if order_by is not None else table.__mapper__.primary_key[0])
        with self.session() as s:
            return list(s.scalars(stmt))

    def count(self, table: type, *where: Any) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(table).where(*where)) or 0

    def config_lineage(self, config_id: int) -> list[Any]:
        """The config and its ancestors, newest first."""
        chain = []
        current: int | None = config_id
        while current is not None:
            cfg = self.get(m.ConfigVersion, current)
            chain.append(cfg)
            current = cfg.parent_id
        return chain

    def info(self) -> StoreInfo:
        """Counts per table, size on disk (file or database) and schema version."""
        tables = {t.__tablename__: self.count(t) for t in _INSERT_ORDER}
        size = None
        if (db := self.sqlite_path) is not None:
            size = sum(p.stat().st_size for p in [db, Path(f"{db}-wal")] if p.exists())
        elif self.dialect == "postgresql":
            with self.engine.connect() as conn:
                size = conn.scalar(select(func.pg_database_size(func.current_database())))
        return StoreInfo(self.display_url, m.SCHEMA_VERSION, size, tables)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

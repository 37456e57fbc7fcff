"""A background writer: many threads enqueue rows, one thread inserts them in batches.

LangChain callback handlers run on worker threads, and SQLite allows one writer at a
time; funnelling every recorded row through one thread with batched ``executemany``
inserts keeps recording cheap and the database uncorrupted.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from optimas_lg.errors import StoreError

if TYPE_CHECKING:
    from optimas_lg.store.store import Store

_FLUSH = object()
_STOP = object()


class BatchWriter:
    """Thread-safe, batched inserts into one store. Use ``put`` from any thread,
    ``flush`` to wait until everything enqueued so far is committed."""

    def __init__(self, store: "Store", batch_size: int = 500, interval_s: float = 0.05) -> None:
        self._store = store
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="optimas-store-writer", daemon=True)
        self._thread.start()

    def put(self, table: type, row: dict[str, Any]) -> None:
        """Enqueue one row for ``table`` (a model class from ``optimas_lg.store.models``)."""
        self._raise_if_failed()
        self._queue.put((table, row))

    def flush(self) -> None:
        """Block until every row enqueued before this call is committed."""
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        done.wait()
        self._raise_if_failed()

    def close(self) -> None:
        """Flush and stop the writer thread; raise if any batch failed to save."""
        if self._thread.is_alive():
            done = threading.Event()
            self._queue.put((_FLUSH, done))
            self._queue.put((_STOP, None))
            self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise StoreError("the store writer failed; rows after the failure were not saved: "
                             f"{self._error}") from self._error

    def _loop(self) -> None:
        pending: dict[type, list[dict[str, Any]]] = defaultdict(list)
        count = 0
        while True:
            try:
                table, row = self._queue.get(timeout=self._interval_s)
            except queue.Empty:
                count = self._write(pending, count)
                continue
            if table is _STOP:
                return
            if table is _FLUSH:
                count = self._write(pending, count)
                row.set()
                continue
            pending[table].append(row)
            count += 1
            if count >= self._batch_size:
                count = self._write(pending, count)

    def _write(self, pending: dict[type, list[dict[str, Any]]], count: int) -> int:
        if not count or self._error is not None:
            pending.clear()
            return 0
        try:
            with self._store.engine.begin() as conn:
                # parents first: runs before the node calls and LLM calls that point at them
                for table in sorted(pending, key=self._store.insert_order):
                    conn.execute(insert(table), pending[table])
        except Exception as exc:  # kept and re-raised to the caller on its next put/flush
            self._error = exc
        pending.clear()
        return 0

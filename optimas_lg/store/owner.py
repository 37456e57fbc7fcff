"""Which process owns a running job, so a job whose process died without closing it
(``kill -9``, a crashed machine) is seen as interrupted instead of staying ``running``.

The owner is the host name, the process id and the process's start time, written into
the job's metadata when the process creates or resumes it. Only an owner on this host can
be checked; the start time tells a process id reused by a later process (after a reboot,
say) from the owner itself. A job written before start times were recorded keeps a reused
id ``running`` (the safe side).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

import psutil

_SAME_START = 1.0  # seconds: a start time read twice may differ in rounding, a reused id's by far more


@dataclass(frozen=True)
class Owner:
    """The process working on a job."""

    host: str
    pid: int
    started: float | None = None  # the process's start time (seconds since the epoch)

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    @classmethod
    def of(cls, meta: dict[str, Any] | None) -> Owner | None:
        """The owner recorded in a job's metadata (``None`` for a job written before owners were)."""
        data = (meta or {}).get("owner")
        if not isinstance(data, dict):
            return None
        return cls(str(data["host"]), int(data["pid"]), data.get("started"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def gone(self) -> bool:
        """Whether this owner is known to have ended: on this host, and no such process, or
        its id now belongs to a process that started at another time."""
        if not self.on_this_host():
            return False
        try:
            started = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            return True
        except psutil.AccessDenied:  # alive, under another user
            return False
        return self.started is not None and abs(started - self.started) > _SAME_START

    def is_current(self) -> bool:
        """Whether this owner is the running process itself."""
        return self.on_this_host() and self.pid == os.getpid() and not self.gone()

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"

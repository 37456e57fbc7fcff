"""Which process owns a running job, so a job whose process died without closing it
(``kill -9``, a crashed machine) is seen as interrupted instead of staying ``running``.

The owner is the host name and the process id written into the job's metadata when the
process creates or resumes it. Only an owner on this host can be checked; a process id
reused by another process keeps the job ``running`` (the safe side).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Owner:
    """The process working on a job."""

    host: str
    pid: int

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid())

    @classmethod
    def of(cls, meta: dict[str, Any] | None) -> Owner | None:
        """The owner recorded in a job's metadata (``None`` for a job written before owners were)."""
        data = (meta or {}).get("owner")
        return cls(str(data["host"]), int(data["pid"])) if isinstance(data, dict) else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def gone(self) -> bool:
        """Whether this owner is known to have ended: on this host, and no such process."""
        if not self.on_this_host() or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, under another user
            return False
        return False

    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"

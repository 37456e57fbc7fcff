"""A throwaway PostgreSQL server in a temporary folder on a free port, for tests and benchmarks.

The server binaries refuse to run as root, so as root they run as the ``postgres`` system
user (``runuser``). Nothing is downloaded: the binaries must be installed (Debian package
``postgresql-15``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = "install the PostgreSQL 15 server (Debian package postgresql-15: `apt-get install postgresql-15`)"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be run on this machine; the message says what to install."""


class PostgresStartError(RuntimeError):
    """The binaries exist but the server did not start (its output is in the message)."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise PostgresUnavailable(f"{name} is neither on the PATH nor in /usr/lib/postgresql/*/bin: {INSTALL_HINT}")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``start()`` a private cluster (trust auth, user ``postgres``), ``create_database()`` per
    test, ``stop()`` removes everything. ``fast=True`` turns off fsync for tests."""

    def __init__(self, fast: bool = True) -> None:
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable("running as root and there is no `postgres` system user to run the "
                                          f"server as: {INSTALL_HINT}") from exc
            self._as_user = [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]
            self._uid, self._gid = user.pw_uid, user.pw_gid
        self._fast = fast
        self.folder = Path(tempfile.mkdtemp(prefix="optimas-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self._databases = 0

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_user, *args], capture_output=True, text=True)
        if done.returncode:
            log = self.folder / "log"
            detail = (done.stderr or done.stdout) + (log.read_text() if log.exists() else "")
            raise PostgresStartError(f"{Path(args[0]).name} failed ({done.returncode}): {detail.strip()[-2000:]}")

    def start(self) -> "PostgresServer":
        if self._as_user:
            os.chown(self.folder, self._uid, self._gid)
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        options = f"-k {self.folder} -c listen_addresses=127.0.0.1"
        if self._fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for attempt in range(3):  # another process may take the free port between probe and bind
            self.port = _free_port()
            try:
                self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "log"),
                          "-o", f"-p {self.port} {options}", "-w", "start")
                return self
            except PostgresStartError:
                if attempt == 2:
                    raise
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        self._databases += 1
        name = f"db{self._databases}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self._as_user, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

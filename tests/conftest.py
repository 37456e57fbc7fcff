"""Shared fixtures: every test gets its own storage home and store; PostgreSQL tests get
their own database on one server started for the session."""

from __future__ import annotations

import signal

import pytest

from optimas_lg.store import Store
from tests.postgres import PostgresServer, PostgresUnavailable

# A shell starts a background command (`make test &`) with SIGINT ignored, and Python then
# installs no KeyboardInterrupt handler, nor do the subprocesses it starts: the Ctrl-C
# tests would test nothing. Restore the handler an interactive run has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A private storage home (OPTIMAS_LG_HOME) for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("OPTIMAS_LG_HOME", str(path))
    monkeypatch.delenv("OPTIMAS_LG_STORE", raising=False)
    return path


@pytest.fixture()
def store(home):
    """A fresh SQLite store in the test's storage home."""
    s = Store(f"sqlite:///{home / 'optimas.db'}")
    yield s
    s.close()


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server in a temporary folder on a free port, stopped after the session."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server to test against: {exc}")
    with server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, home):
    """The URL of a new, empty store on each backend: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{home / 'optimas.db'}"
    return request.getfixturevalue("postgres_server").create_database()

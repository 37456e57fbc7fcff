"""Shared fixtures: every test gets its own storage home and store."""

from __future__ import annotations

import pytest

from optimas_lg.store import Store


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

"""The store's tests run on both backends."""

from __future__ import annotations

import pytest

from optimas_lg.store import Store


@pytest.fixture()
def store(store_url):
    """A fresh store on each backend (overrides the SQLite-only store of tests/conftest.py)."""
    s = Store(store_url)
    yield s
    s.close()

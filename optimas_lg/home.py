"""Where optimas-lg keeps its data: one folder (the "storage home") and one database URL.

Both come from the environment so that a CLI run, a test and a Studio server can agree
without passing paths around:

- ``OPTIMAS_LG_HOME``: the storage folder (default: ``./storage``). LRF checkpoints,
  LoRA adapters, the converted model cache and the default SQLite database live here.
- ``OPTIMAS_LG_STORE``: any SQLAlchemy URL (default: ``sqlite:///<home>/optimas.db``).
"""

from __future__ import annotations

import os
from pathlib import Path

from optimas_lg.errors import StoreError

HOME_ENV = "OPTIMAS_LG_HOME"
STORE_ENV = "OPTIMAS_LG_STORE"


def home_path() -> Path:
    """Where the storage home is (``OPTIMAS_LG_HOME``, default ``./storage``), not created."""
    return Path(os.environ.get(HOME_ENV, "storage")).expanduser().resolve()


def storage_dir() -> Path:
    """The storage home, created on first use."""
    return _folder(home_path())


def subdir(name: str) -> Path:
    """A named folder under the storage home (``adapters``, ``lrf``, ``models``...)."""
    return _folder(storage_dir() / name)


def _folder(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the storage folder {path} ({exc.strerror}); set {HOME_ENV} to a "
                         "writable folder") from exc
    return path


def default_store_url(create: bool = True) -> str:
    """The store URL from ``OPTIMAS_LG_STORE``, else a SQLite file in the storage home
    (created unless ``create`` is false, as for showing the default in ``--help``)."""
    return os.environ.get(STORE_ENV) or f"sqlite:///{(storage_dir() if create else home_path()) / 'optimas.db'}"

"""The run store: SQLite (or any SQLAlchemy URL) holding runs, node calls, configs, pairs,
LRF checkpoints and optimizer events."""

from optimas_lg.store import models
from optimas_lg.store.models import SCHEMA_VERSION
from optimas_lg.store.store import Store, StoreInfo
from optimas_lg.store.writer import BatchWriter

__all__ = ["BatchWriter", "SCHEMA_VERSION", "Store", "StoreInfo", "models"]

"""The run store: SQLite or PostgreSQL (any SQLAlchemy URL) holding runs, node calls, configs,
pairs, LRF checkpoints and optimizer events, and the LangGraph checkpointer kept with it."""

from optimas_lg.store import models
from optimas_lg.store.checkpoints import checkpointer
from optimas_lg.store.models import SCHEMA_VERSION
from optimas_lg.store.store import Store, StoreInfo
from optimas_lg.store.writer import BatchWriter

__all__ = ["BatchWriter", "SCHEMA_VERSION", "Store", "StoreInfo", "checkpointer", "models"]

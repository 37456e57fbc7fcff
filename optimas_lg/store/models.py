"""The store's tables (SQLAlchemy 2 declarative models).

One row per thing the optimizer learns from: a job groups runs; a run is one graph
invocation on one example under one config; node calls and LLM calls are what happened
inside it. Configs are immutable versions linked to their parent. Payloads are JSON
columns and are stored whole; names and keys that come from the user's graph or data are
unbounded text, because PostgreSQL, unlike SQLite, enforces a VARCHAR's length. A row that
SQLite stores, PostgreSQL stores too (see ``SafeText`` and ``JSONText``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC on every backend.

    PostgreSQL would otherwise convert an aware value to the server's local time zone
    before dropping it, so the same instant would read back differently per server.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value


class SafeText(TypeDecorator[str]):
    """Text that PostgreSQL accepts whatever it holds: NUL, which SQLite stores and PostgreSQL
    refuses (failing the writer's whole batch), becomes U+FFFD there."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and dialect.name == "postgresql" and "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        return value


class JSONText(TypeDecorator[Any]):
    """JSON kept as text, as SQLite keeps it. PostgreSQL's json type refuses NaN and
    Infinity, which Python's json writes and reads back and SQLite stores."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


_JSON = JSON().with_variant(JSONText(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: _JSON, list[Any]: _JSON, Any: _JSON, datetime: UTCDateTime}


class SchemaInfo(Base):
    """Key/value facts about the store itself: its schema version and its identity."""

    __tablename__ = "schema_info"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(SafeText)


class Job(Base):
    """A unit of work over many runs: a dataset run, a pair collection, an optimization."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(SafeText, default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ConfigVersion(Base):
    """An immutable knob assignment; ``parent_id`` gives its lineage."""

    __tablename__ = "configs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("configs.id"), default=None)
    target: Mapped[str] = mapped_column(SafeText, default="")
    values: Mapped[dict[str, Any]] = mapped_column()
    note: Mapped[str] = mapped_column(SafeText, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One invocation of the user's graph on one example."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True, default=None)
    example_key: Mapped[str] = mapped_column(SafeText, default="")
    config_id: Mapped[int | None] = mapped_column(ForeignKey("configs.id"), default=None)
    purpose: Mapped[str] = mapped_column(String(32), default="eval")
    replay_of: Mapped[str | None] = mapped_column(String(36), default=None)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output: Mapped[Any] = mapped_column(nullable=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default="running")
    score: Mapped[float | None] = mapped_column(Float, default=None)
    feedback: Mapped[str | None] = mapped_column(SafeText, default=None)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    latency_s: Mapped[float | None] = mapped_column(Float, default=None)


class NodeCall(Base):
    """One execution of one node (or routing function) inside a run."""

    __tablename__ = "node_calls"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    parent_call_id: Mapped[str | None] = mapped_column(String(36), default=None)
    kind: Mapped[str] = mapped_column(String(16), default="node")
    node: Mapped[str] = mapped_column(SafeText, index=True)
    namespace: Mapped[str] = mapped_column(SafeText, default="")
    step: Mapped[int | None] = mapped_column(Integer, default=None)
    task_id: Mapped[str] = mapped_column(SafeText, default="")
    inputs: Mapped[Any] = mapped_column(nullable=True, default=None)
    reads: Mapped[list[Any]] = mapped_column(default=list)
    output: Mapped[Any] = mapped_column(nullable=True, default=None)
    knobs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    latency_s: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)


class LLMCall(Base):
    """One chat-model call, nested under the node call that made it."""

    __tablename__ = "llm_calls"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    node_call_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    model: Mapped[str] = mapped_column(SafeText, default="")
    messages: Mapped[Any] = mapped_column(nullable=True, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    response: Mapped[Any] = mapped_column(nullable=True, default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    latency_s: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)


class PreferencePairRow(Base):
    """A (chosen, rejected) pair of one node's outputs on one input, with provenance."""

    __tablename__ = "preference_pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True, default=None)
    node: Mapped[str] = mapped_column(SafeText, index=True)
    example_key: Mapped[str] = mapped_column(SafeText)
    inputs: Mapped[Any] = mapped_column()
    chosen: Mapped[Any] = mapped_column()
    rejected: Mapped[Any] = mapped_column()
    chosen_score: Mapped[float] = mapped_column(Float)
    rejected_score: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LRFCheckpoint(Base):
    """Metadata of a saved local reward model; weights are safetensors files at ``path``."""

    __tablename__ = "lrf_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True, default=None)
    path: Mapped[str] = mapped_column(SafeText)
    backbone: Mapped[str] = mapped_column(SafeText)
    nodes: Mapped[list[Any]] = mapped_column()
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OptimizerEvent(Base):
    """Anything the optimizer decided or tried, with its evidence."""

    __tablename__ = "optimizer_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    iteration: Mapped[int | None] = mapped_column(Integer, default=None)
    kind: Mapped[str] = mapped_column(String(32))
    node: Mapped[str | None] = mapped_column(SafeText, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_runs_job_example", Run.job_id, Run.example_key)

"""SQLAlchemy 2.0 models. The schema only changes through an Alembic revision in migrations/."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    evaluating = "evaluating"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    def is_finished(self) -> bool:
        return self in (JobState.succeeded, JobState.failed, JobState.cancelled)


class CandidateState(enum.StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    stopped_early = "stopped_early"
    failed = "failed"

    def is_finished(self) -> bool:
        return self in (
            CandidateState.completed,
            CandidateState.stopped_early,
            CandidateState.failed,
        )


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(8))
    label: Mapped[str | None] = mapped_column(String(200), default=None)
    task: Mapped[str] = mapped_column(String(16))
    # which rule decided the task (given by the user, float values, few classes...)
    task_rule: Mapped[str | None] = mapped_column(String(300), default=None)
    rows: Mapped[int] = mapped_column(Integer)
    features: Mapped[int] = mapped_column(Integer)
    class_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    input_shape: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    # per input column of a table: name, detected (or given) type, missing rate
    columns: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    fingerprint: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))  # relative to the artifact dir; server-made
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_owner_state", "owner", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), default=None, index=True
    )
    builtin_dataset: Mapped[str | None] = mapped_column(String(50), default=None)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=JobState.queued, index=True)
    executor: Mapped[str] = mapped_column(String(20), default="ray")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the lease of the controller running the job: a job whose heartbeat is stale has no runner
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    current_iteration: Mapped[int | None] = mapped_column(Integer, default=None)
    candidates_done: Mapped[int] = mapped_column(Integer, default=0)
    candidates_total: Mapped[int] = mapped_column(Integer, default=0)
    best_objective: Mapped[float | None] = mapped_column(Float, default=None)
    stop_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Iteration(Base):
    __tablename__ = "iterations"
    __table_args__ = (UniqueConstraint("job_id", "iteration"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    previous_objective: Mapped[float] = mapped_column(Float)
    best_objective: Mapped[float | None] = mapped_column(Float, default=None)
    chosen: Mapped[str | None] = mapped_column(String(64), default=None)
    improved: Mapped[bool] = mapped_column(Boolean, default=False)
    ensemble: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ensembles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=CandidateState.pending)
    hparams: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    depth: Mapped[int | None] = mapped_column(Integer, default=None)
    params: Mapped[int | None] = mapped_column(Integer, default=None)
    loss: Mapped[float | None] = mapped_column(Float, default=None)
    complexity: Mapped[float | None] = mapped_column(Float, default=None)
    objective: Mapped[float | None] = mapped_column(Float, default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    own_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chosen: Mapped[bool] = mapped_column(Boolean, default=False)
    node: Mapped[str | None] = mapped_column(String(200), default=None)
    epochs_run: Mapped[int] = mapped_column(Integer, default=0)
    # trainings started for this candidate: more than one when a worker died under it
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    failure_kind: Mapped[str | None] = mapped_column(
        String(16), default=None
    )  # training | timeout | out_of_memory | infrastructure
    # of a stopped_early candidate: pruned (successive halving) or patience
    stop_reason: Mapped[str | None] = mapped_column(String(16), default=None)
    duration_s: Mapped[float | None] = mapped_column(Float, default=None)
    train_s: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    weights_path: Mapped[str | None] = mapped_column(String(500), default=None)
    # per-epoch training curves ({"loss": [...], "val_loss": [...], ...}); deferred: only the
    # candidate page reads it, never a list or a plot of many candidates
    history: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Upload(Base):
    """One stored upload's size, kept when its dataset is deleted: what the daily upload quota
    counts (deleting a dataset does not give its bytes back for the day)."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # state | error | info
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class HistoryEntry(Base):
    """One finished candidate of a job, kept across jobs: its configuration and scores with
    the meta-features of the data it trained on (``automl.meta``), to rank configurations for
    new data and warm-start searches.

    ``job_id`` is deliberately not a foreign key: what a search learned outlives the job, so
    deleting a job keeps its entries (still naming it), as deleting an upload keeps entries
    naming its ``dataset_id``. An entry holds no weights and no rows of data, only
    hyperparameters, scores and meta-features. Every query filters by ``owner`` (the leading
    column of the index).
    """

    __tablename__ = "history_entries"
    __table_args__ = (Index("ix_history_entries_owner_task", "owner", "task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    candidate: Mapped[str] = mapped_column(String(64))
    iteration: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(32))
    dataset_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # a built-in's name, or the upload's name when the entry was written
    dataset_name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    hparams: Mapped[dict[str, Any]] = mapped_column(JSON)
    objective: Mapped[float] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float, default=None)
    complexity: Mapped[float | None] = mapped_column(Float, default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

"""The tables, declared once; Alembic migrations must produce exactly this schema.

``tests/storage/test_migrations.py`` compares a migrated database with this metadata, so a
change here without a new migration (or the other way round) fails the suite.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, String, Text, TypeDecorator, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Names every constraint and index, so SQLite batch migrations can find them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out, on every backend.

    SQLite has no time zones and hands back naive values; storing UTC and re-attaching it on
    load keeps comparisons with ``datetime.now(timezone.utc)`` safe for callers. PostgreSQL's
    ``timestamptz`` gets the aware value itself: asyncpg would read a naive one as local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Preset(Base):
    """A user's saved method + options + style images, recalled by name."""

    __tablename__ = "presets"
    __table_args__ = (
        UniqueConstraint("platform", "user_id", "name_key", name="uq_presets_owner_name_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(32))  # as the user typed it
    name_key: Mapped[str] = mapped_column(String(32))  # lower-cased: uniqueness and lookups
    method: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    use_count: Mapped[int] = mapped_column(Integer, default=0)

    styles: Mapped[list[PresetStyle]] = relationship(
        back_populates="preset", order_by="PresetStyle.position",
        cascade="all, delete-orphan", passive_deletes=True)


class PresetStyle(Base):
    """One style image of a preset, in the order (and with the weight) it was given."""

    __tablename__ = "preset_styles"

    preset_id: Mapped[int] = mapped_column(
        ForeignKey("presets.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    weight: Mapped[float] = mapped_column(Float)
    image: Mapped[bytes] = mapped_column(LargeBinary)
    mime: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))

    preset: Mapped[Preset] = relationship(back_populates="styles")


class Job(Base):
    """One request's life: queued, started, finished (or interrupted by a restart)."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled', "
                        "'interrupted')", name="status"),
        Index("ix_jobs_owner_queued_at", "platform", "user_id", "queued_at"),
        Index("ix_jobs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    device: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    preset: Mapped[str | None] = mapped_column(String(32))
    # The process that queued it (host/boot/pid/start), so only ended processes' jobs are
    # closed at start-up; None for rows from before it was recorded.
    process_owner: Mapped[str | None] = mapped_column(String(200))


class PlaceSettings(Base):
    """Defaults and limits an admin set for a whole space (``room`` "") or for one room in it.

    Every setting is nullable: None inherits (a room from its space, a space from the
    engine's defaults).
    """

    __tablename__ = "place_settings"
    __table_args__ = (
        UniqueConstraint("platform", "space", "room", name="uq_place_settings_place"),
        CheckConstraint("results IS NULL OR results IN ('public', 'ephemeral')", name="results"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    space: Mapped[str] = mapped_column(String(128))  # a Discord guild, a Slack workspace
    room: Mapped[str] = mapped_column(String(128))  # a channel; "" for the whole space
    default_method: Mapped[str | None] = mapped_column(String(64))
    default_size: Mapped[int | None] = mapped_column(Integer)
    allowed_methods: Mapped[list[str] | None] = mapped_column(JSON)
    jobs_per_user: Mapped[int | None] = mapped_column(Integer)
    allow_sd: Mapped[bool | None] = mapped_column(Boolean)
    results: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))


class KeptResult(Base):
    """What a finished job's buttons need, so they work after a restart and from any process.

    Written when a job ends done, read when the job is no longer in the queue's memory, and
    deleted after ``results_kept_days`` or past ``results_kept_per_user`` (storage/results.py).
    """

    __tablename__ = "kept_results"
    __table_args__ = (
        Index("ix_kept_results_owner_created_at", "platform", "user_id", "created_at"),
        Index("ix_kept_results_created_at", "created_at"),
    )

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]]  # as the job ran: validated, defaults filled in
    seed: Mapped[int | None] = mapped_column(BigInteger)
    prompt: Mapped[str | None] = mapped_column(Text)
    preset: Mapped[str | None] = mapped_column(String(32))
    style_weights: Mapped[list[float] | None] = mapped_column(JSON)
    space: Mapped[str | None] = mapped_column(String(128))  # where it was asked (None: no place)
    room: Mapped[str | None] = mapped_column(String(128))
    info: Mapped[dict[str, Any]]  # how it ran: seconds, device, size
    created_at: Mapped[datetime]

    images: Mapped[list[KeptImage]] = relationship(
        back_populates="result", order_by="KeptImage.position",
        cascade="all, delete-orphan", passive_deletes=True)


class KeptImage(Base):
    """One input image of a kept result: its content, a style image or its mask, as uploaded."""

    __tablename__ = "kept_images"
    __table_args__ = (
        CheckConstraint("role IN ('content', 'style', 'mask')", name="role"),
    )

    job_id: Mapped[str] = mapped_column(
        ForeignKey("kept_results.job_id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    # A style image that came out of the owner's preset: the owner's alone (results.PresetStyle).
    from_preset: Mapped[bool] = mapped_column(Boolean)
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    result: Mapped[KeptResult] = relationship(back_populates="images")

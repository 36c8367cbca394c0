"""Kept results: what the buttons under a finished job need, kept for a while.

A result's buttons (Re-roll, Stronger, Weaker, Save as preset) need the request that made
it, input images included. Kept here rather than in one process's memory, they keep working
after a restart and when another process of the same bot answers the click. Input images
are the bulk, so results are kept ``keep_days`` and at most ``per_user`` per user: each
``keep_result`` deletes what has run out, and ``get_result`` never answers with it even if
no write has purged it yet. Bytes and plain data only; what they mean is the application's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from storage.db import Database
from storage.models import KeptImage, KeptResult, utcnow

log = logging.getLogger(__name__)

ROLES = ("content", "style", "mask")


@dataclass(frozen=True, repr=False)
class InputImage:
    """One input image as it was uploaded (or came out of the owner's preset)."""

    role: str  # content, style or mask
    data: bytes
    filename: str
    from_preset: bool = False

    def __repr__(self) -> str:
        return f"InputImage({self.role}, {self.filename!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class ResultRecord:
    job_id: str
    platform: str
    user_id: str
    method: str
    options: dict[str, Any]
    seed: int | None
    prompt: str | None
    preset: str | None
    style_weights: list[float] | None
    space: str | None
    room: str | None
    info: dict[str, Any]
    images: list[InputImage] = field(default_factory=list)
    created_at: datetime | None = None  # set by the database


async def keep_result(db: Database, record: ResultRecord, *, keep_days: float,
                      per_user: int) -> int:
    """Store a finished job's record, then purge what ran out; how many were purged."""
    for image in record.images:
        if image.role not in ROLES:
            raise ValueError(f"an input image's role is one of {', '.join(ROLES)}, not {image.role!r}")
    async with db.write() as session:
        session.add(KeptResult(
            job_id=record.job_id, platform=record.platform, user_id=record.user_id,
            method=record.method, options=dict(record.options), seed=record.seed,
            prompt=record.prompt, preset=record.preset,
            style_weights=None if record.style_weights is None else list(record.style_weights),
            space=record.space, room=record.room, info=dict(record.info), created_at=utcnow(),
            images=[KeptImage(position=i, role=image.role, from_preset=image.from_preset,
                              filename=image.filename[:255], data=image.data)
                    for i, image in enumerate(record.images)]))
        await session.flush()
        purged = await _purge(session, keep_days, record.platform, record.user_id, per_user)
    if purged:
        log.info("purged %d kept result(s) past their retention", purged)
    return purged


async def get_result(db: Database, job_id: str, *, keep_days: float) -> ResultRecord | None:
    """The kept record of ``job_id``, or None when there is none or it ran out."""
    async with db.session() as session:
        row = (await session.scalars(
            select(KeptResult).options(selectinload(KeptResult.images))
            .where(KeptResult.job_id == job_id, KeptResult.created_at >= _cutoff(keep_days)))).first()
    return None if row is None else _record(row)


async def purge_results(db: Database, *, keep_days: float) -> int:
    """Delete every kept result older than ``keep_days``; how many."""
    async with db.write() as session:
        return await _purge(session, keep_days)


async def _purge(session: Any, keep_days: float, platform: str | None = None,
                 user_id: str | None = None, per_user: int | None = None) -> int:
    """Old results everywhere, and the owner's beyond the newest ``per_user``.

    Rows are deleted by id, so the images go by the foreign key's ON DELETE CASCADE on
    both backends (SQLite runs with foreign_keys=ON)."""
    old = list((await session.scalars(
        select(KeptResult.job_id).where(KeptResult.created_at < _cutoff(keep_days)))).all())
    if platform is not None and per_user is not None:
        old += (await session.scalars(
            select(KeptResult.job_id)
            .where(KeptResult.platform == platform, KeptResult.user_id == user_id)
            .order_by(KeptResult.created_at.desc(), KeptResult.job_id.desc())
            .offset(per_user))).all()
    gone = set(old)
    if gone:
        await session.execute(delete(KeptResult).where(KeptResult.job_id.in_(gone)))
    return len(gone)


def _cutoff(keep_days: float) -> datetime:
    return utcnow() - timedelta(days=keep_days)


def _record(row: KeptResult) -> ResultRecord:
    return ResultRecord(
        job_id=row.job_id, platform=row.platform, user_id=row.user_id, method=row.method,
        options=dict(row.options), seed=row.seed, prompt=row.prompt, preset=row.preset,
        style_weights=None if row.style_weights is None else [float(w) for w in row.style_weights],
        space=row.space, room=row.room, info=dict(row.info), created_at=row.created_at,
        images=[InputImage(role=i.role, data=bytes(i.data), filename=i.filename,
                           from_preset=bool(i.from_preset)) for i in row.images])

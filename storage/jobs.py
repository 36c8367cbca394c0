"""Job records: who asked for what, how it went, how long it took.

The queue writes one row per job as it moves along; at start-up ``mark_interrupted`` closes
rows a crash or kill left open, so history never shows a job "running" forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from engine.errors import OptionError
from storage.db import Database
from storage.models import JOB_STATUSES, Job, utcnow

log = logging.getLogger(__name__)

FINAL_STATUSES = ("done", "failed", "cancelled")
OPEN_STATUSES = ("queued", "running")
HISTORY_MAX = 100
INTERRUPTED_ERROR = "interrupted: the bot stopped before this job finished"


@dataclass(frozen=True)
class JobRecord:
    id: str
    platform: str
    user_id: str
    method: str
    options: dict[str, Any]
    status: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None
    device: str | None
    error: str | None
    preset: str | None


class JobNotRecorded(LookupError):
    """A job id that record_queued never saw: a bug in the caller, not the user's problem."""


async def record_queued(db: Database, job_id: str, platform: str, user_id: str, method: str,
                        options: dict[str, Any], preset: str | None = None) -> None:
    async with db.write() as session:
        session.add(Job(id=job_id, platform=platform, user_id=user_id, method=method,
                        options=dict(options), status="queued", queued_at=utcnow(),
                        preset=preset))


async def record_started(db: Database, job_id: str, device: str) -> None:
    await _update(db, job_id, status="running", started_at=utcnow(), device=device)


async def record_finished(db: Database, job_id: str, status: str, seconds: float | None,
                          error: str | None = None) -> None:
    """Close the job as done, failed or cancelled; ``seconds`` is how long it ran (None: never)."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"final job status must be one of {', '.join(FINAL_STATUSES)}, "
                         f"not {status!r}")
    await _update(db, job_id, status=status, finished_at=utcnow(),
                  seconds=None if seconds is None else float(seconds),
                  error=error)


async def _update(db: Database, job_id: str, **values: Any) -> None:
    async with db.write() as session:
        result = await session.execute(update(Job).where(Job.id == job_id).values(**values))
        if result.rowcount == 0:
            raise JobNotRecorded(f"job {job_id} was never recorded as queued")


async def mark_interrupted(db: Database) -> int:
    """At start-up: jobs still queued or running belong to a previous run; close them."""
    async with db.write() as session:
        result = await session.execute(
            update(Job).where(Job.status.in_(OPEN_STATUSES))
            .values(status="interrupted", finished_at=utcnow(), error=INTERRUPTED_ERROR))
    if result.rowcount:
        log.warning("%d job(s) left unfinished by the previous run marked interrupted",
                    result.rowcount)
    return result.rowcount


async def history(db: Database, platform: str, user_id: str, limit: int = 10
                  ) -> list[JobRecord]:
    """The user's most recent jobs, newest first."""
    if not 1 <= limit <= HISTORY_MAX:
        raise OptionError(f"limit must be between 1 and {HISTORY_MAX} (got {limit}).")
    async with db.session() as session:
        jobs = (await session.scalars(
            select(Job).where(Job.platform == platform, Job.user_id == user_id)
            .order_by(Job.queued_at.desc(), Job.id.desc()).limit(limit))).all()
    return [_record(job) for job in jobs]


async def get_job(db: Database, job_id: str) -> JobRecord | None:
    async with db.session() as session:
        job = await session.get(Job, job_id)
    return _record(job) if job is not None else None


async def stats(db: Database) -> dict[str, Any]:
    """Counts by status and by method, and mean run seconds per method (finished jobs).

    ``{"total": 12, "by_status": {"done": 9, ...}, "by_method": {"fast": 7, ...},
    "mean_seconds": {"fast": 0.42, ...}}``; every status appears in ``by_status``. Means
    are over jobs with status "done": failures and cancellations stop early and would
    make a method look faster than it is.
    """
    async with db.session() as session:
        by_status = dict((await session.execute(
            select(Job.status, func.count()).group_by(Job.status))).all())
        by_method = dict((await session.execute(
            select(Job.method, func.count()).group_by(Job.method)
            .order_by(Job.method))).all())
        means = dict((await session.execute(
            select(Job.method, func.avg(Job.seconds))
            .where(Job.status == "done", Job.seconds.is_not(None))
            .group_by(Job.method).order_by(Job.method))).all())
    return {
        "total": sum(by_status.values()),
        "by_status": {status: by_status.get(status, 0) for status in JOB_STATUSES},
        "by_method": by_method,
        "mean_seconds": {method: float(mean) for method, mean in means.items()},
    }


def _record(job: Job) -> JobRecord:
    return JobRecord(id=job.id, platform=job.platform, user_id=job.user_id, method=job.method,
                     options=dict(job.options), status=job.status, queued_at=job.queued_at,
                     started_at=job.started_at, finished_at=job.finished_at,
                     seconds=job.seconds, device=job.device, error=job.error,
                     preset=job.preset)

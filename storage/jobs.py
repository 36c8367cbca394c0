"""Job records: who asked for what, how it went, how long it took.

The queue writes one row per job as it moves along; at start-up ``mark_interrupted`` closes
the rows that an ended process (a crash, a kill) left open, so history never shows a job
"running" forever, while the jobs of processes still at work are left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import func, or_, select, update

from storage.db import Database
from storage.models import Job, utcnow

log = logging.getLogger(__name__)

FINAL_STATUSES = ("done", "failed", "cancelled")
OPEN_STATUSES = ("queued", "running")
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
                        options: dict[str, Any], preset: str | None = None, *,
                        process_owner: str | None = None) -> None:
    async with db.write() as session:
        session.add(Job(id=job_id, platform=platform, user_id=user_id, method=method,
                        options=dict(options), status="queued", queued_at=utcnow(),
                        preset=preset, process_owner=process_owner))


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


async def mark_interrupted(db: Database, is_gone: Callable[[str | None], bool]) -> int:
    """At start-up: close the jobs still queued or running whose process ``is_gone``."""
    async with db.write() as session:
        owners = set((await session.scalars(
            select(Job.process_owner).where(Job.status.in_(OPEN_STATUSES)).distinct())).all())
        gone = [owner for owner in owners if owner is not None and is_gone(owner)]
        ended = Job.process_owner.in_(gone)
        if None in owners and is_gone(None):
            ended = or_(ended, Job.process_owner.is_(None))
        result = await session.execute(
            update(Job).where(Job.status.in_(OPEN_STATUSES), ended)
            .values(status="interrupted", finished_at=utcnow(), error=INTERRUPTED_ERROR))
    if result.rowcount:
        log.warning("%d job(s) left unfinished by the previous run marked interrupted",
                    result.rowcount)
    return result.rowcount


async def get_job(db: Database, job_id: str) -> JobRecord | None:
    async with db.session() as session:
        job = await session.get(Job, job_id)
    return _record(job) if job is not None else None


async def recent_seconds(db: Database, methods: list[str] | None = None, *,
                         limit: int = 20) -> dict[str, list[float]]:
    """How long the last ``limit`` finished runs of each method took, newest first.

    Only jobs that ended ``done`` count: a failure or a cancellation says nothing about how
    long the method takes. What the ETAs of /queue are made from.
    """
    done = (Job.status == "done", Job.seconds.is_not(None))
    out: dict[str, list[float]] = {}
    async with db.session() as session:
        if methods is None:
            methods = list((await session.scalars(select(Job.method).where(*done).distinct())).all())
        for method in dict.fromkeys(methods):  # one small query per method: each gets its own limit
            seconds = (await session.scalars(
                select(Job.seconds).where(Job.method == method, *done)
                .order_by(Job.finished_at.desc()).limit(limit))).all()
            if seconds:
                out[method] = [float(s) for s in seconds]
    return out


@dataclass(frozen=True)
class MethodStats:
    """One method's jobs over a period, from the job log (what /stats shows)."""

    method: str
    jobs: int
    by_status: dict[str, int]
    seconds: list[float]  # run times of the jobs that ended done, sorted
    failures: list[tuple[str, int]]  # (error, how many), most frequent first

    @property
    def median(self) -> float | None:
        return percentile(self.seconds, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.seconds, 95)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted ``values``; None for none."""
    if not values:
        return None
    rank = max(1, -(-len(values) * pct // 100))  # ceil
    return values[int(rank) - 1]


async def job_stats(db: Database, *, since: timedelta | None = None,
                    top_failures: int = 5) -> list[MethodStats]:
    """Per method: jobs by status, run times of those done, and the commonest failures."""
    since_at = utcnow() - since if since is not None else None

    def recent(query):
        return query if since_at is None else query.where(Job.queued_at >= since_at)

    async with db.session() as session:
        counts = (await session.execute(recent(
            select(Job.method, Job.status, func.count()).group_by(Job.method, Job.status)))).all()
        times = (await session.execute(recent(
            select(Job.method, Job.seconds).where(Job.status == "done", Job.seconds.is_not(None))))).all()
        errors = (await session.execute(recent(
            select(Job.method, Job.error, func.count()).where(Job.status == "failed")
            .group_by(Job.method, Job.error)))).all()
    by_method: dict[str, dict[str, int]] = {}
    for method, status, n in counts:
        by_method.setdefault(method, {})[status] = n
    out = []
    for method in sorted(by_method):
        failures = sorted(((error or "no reason recorded", n) for m, error, n in errors if m == method),
                          key=lambda pair: (-pair[1], pair[0]))
        out.append(MethodStats(method=method, jobs=sum(by_method[method].values()),
                               by_status=dict(sorted(by_method[method].items())),
                               seconds=sorted(float(s) for m, s in times if m == method),
                               failures=failures[:top_failures]))
    return out


def _record(job: Job) -> JobRecord:
    return JobRecord(id=job.id, platform=job.platform, user_id=job.user_id, method=job.method,
                     options=dict(job.options), status=job.status, queued_at=job.queued_at,
                     started_at=job.started_at, finished_at=job.finished_at,
                     seconds=job.seconds, device=job.device, error=job.error,
                     preset=job.preset)

"""Job records through their life and after a crash."""

from __future__ import annotations

import asyncio

import pytest

from storage.db import Database
from storage.jobs import (INTERRUPTED_ERROR, JobNotRecorded, get_job, mark_interrupted,
                          record_finished, record_queued, record_started)

ALICE = ("discord", "111")
BOB = ("slack", "U222")


async def test_lifecycle_done(db):
    await record_queued(db, "7f3a", *ALICE, "gatys", {"steps": 20, "size": 128}, "starry")
    job = await get_job(db, "7f3a")
    assert (job.status, job.method, job.options, job.preset) == (
        "queued", "gatys", {"steps": 20, "size": 128}, "starry")
    assert job.started_at is None and job.finished_at is None and job.seconds is None

    await record_started(db, "7f3a", "cpu")
    job = await get_job(db, "7f3a")
    assert (job.status, job.device) == ("running", "cpu")
    assert job.started_at >= job.queued_at

    await record_finished(db, "7f3a", "done", 12.5)
    job = await get_job(db, "7f3a")
    assert (job.status, job.seconds, job.error) == ("done", 12.5, None)
    assert job.finished_at >= job.started_at
    assert job.queued_at.tzinfo is not None


async def test_failed_and_cancelled_keep_their_error(db):
    await record_queued(db, "a", *ALICE, "sd", {}, None)
    await record_started(db, "a", "cuda:0")
    await record_finished(db, "a", "failed", 3.0, error="something went wrong (job a)")
    await record_queued(db, "b", *ALICE, "sd", {}, None)
    await record_finished(db, "b", "cancelled", 0.0)  # cancelled while still queued
    a, b = await get_job(db, "a"), await get_job(db, "b")
    assert (a.status, a.error) == ("failed", "something went wrong (job a)")
    assert (b.status, b.started_at, b.device) == ("cancelled", None, None)


async def test_only_final_statuses_finish_a_job(db):
    await record_queued(db, "j", *ALICE, "fast", {}, None)
    with pytest.raises(ValueError, match="done, failed, cancelled"):
        await record_finished(db, "j", "running", 1.0)
    assert (await get_job(db, "j")).status == "queued"


async def test_unknown_job_ids_are_reported(db):
    with pytest.raises(JobNotRecorded, match="nope"):
        await record_started(db, "nope", "cpu")
    with pytest.raises(JobNotRecorded):
        await record_finished(db, "nope", "done", 1.0)
    assert await get_job(db, "nope") is None


async def test_mark_interrupted_closes_only_the_jobs_of_ended_processes(db_url):
    async with Database(db_url) as db:
        await record_queued(db, "waiting", *ALICE, "fast", {}, None, process_owner="dead")
        await record_queued(db, "working", *ALICE, "gatys", {}, None, process_owner="dead")
        await record_started(db, "working", "cpu")
        await record_queued(db, "finished", *BOB, "fast", {}, None, process_owner="dead")
        await record_finished(db, "finished", "done", 1.0)
        await record_queued(db, "elsewhere", *BOB, "fast", {}, None, process_owner="alive")
        await record_queued(db, "old", *BOB, "fast", {}, None)  # from before owners were kept
        # the "dead" process dies here: no record_finished for its first two
    async with Database(db_url) as db:
        assert await mark_interrupted(db, lambda owner: owner != "alive") == 3
        assert await mark_interrupted(db, lambda owner: owner != "alive") == 0  # nothing left
        assert (await get_job(db, "elsewhere")).status == "queued"
        assert (await get_job(db, "old")).status == "interrupted"
        waiting, working, finished = [await get_job(db, j)
                                      for j in ("waiting", "working", "finished")]
        assert waiting.status == working.status == "interrupted"
        assert waiting.error == INTERRUPTED_ERROR and waiting.finished_at is not None
        assert working.device == "cpu"
        assert (finished.status, finished.error) == ("done", None)


async def test_concurrent_job_updates(db):
    ids = [f"c{i}" for i in range(20)]
    await asyncio.gather(*(record_queued(db, j, *ALICE, "fast", {}, None) for j in ids))
    await asyncio.gather(*(record_started(db, j, "cpu") for j in ids))
    await asyncio.gather(*(record_finished(db, j, "done", 1.0) for j in ids))
    assert [(await get_job(db, j)).status for j in ids] == ["done"] * 20


# -- what /queue and /stats read (issue 16) ------------------------------------------------

async def _finished(db, job_id, method, status, seconds, error=None, who=ALICE):
    await record_queued(db, job_id, *who, method, {}, None)
    await record_started(db, job_id, "cpu")
    await record_finished(db, job_id, status, seconds, error=error)


async def test_queue_recent_seconds_are_per_method_newest_first_and_done_only(db):
    from storage.jobs import recent_seconds

    for i, s in enumerate([5.0, 7.0, 9.0, 11.0]):
        await _finished(db, f"h{i}", "hub", "done", s)
    await _finished(db, "hf", "hub", "failed", 99.0, error="OptionError")
    await _finished(db, "hc", "hub", "cancelled", 0.5)
    await _finished(db, "g1", "gatys", "done", 60.0)
    assert await recent_seconds(db, ["hub", "gatys", "sd"], limit=3) == {"hub": [11.0, 9.0, 7.0],
                                                                          "gatys": [60.0]}
    assert set(await recent_seconds(db)) == {"hub", "gatys"}


async def test_stats_count_jobs_times_and_failure_reasons_per_method(db):
    from storage.jobs import job_stats, percentile

    for i in range(20):
        await _finished(db, f"h{i}", "hub", "done", float(i + 1))
    await _finished(db, "f1", "hub", "failed", 1.0, error="ImageError")
    await _finished(db, "f2", "hub", "failed", 1.0, error="ImageError", who=BOB)
    await _finished(db, "f3", "hub", "failed", None, error="timeout")
    await _finished(db, "c1", "sd", "cancelled", None, error="cancelled by the requester")
    [hub, sd] = await job_stats(db)
    assert (hub.method, hub.jobs, hub.by_status) == ("hub", 23, {"done": 20, "failed": 3})
    assert (hub.median, hub.p95) == (10.0, 19.0)
    assert hub.failures == [("ImageError", 2), ("timeout", 1)]
    assert (sd.jobs, sd.by_status, sd.median, sd.failures) == (1, {"cancelled": 1}, None, [])
    assert percentile([], 50) is None and percentile([3.0], 95) == 3.0
    assert await job_stats(db, since=__import__("datetime").timedelta(seconds=-1)) == []

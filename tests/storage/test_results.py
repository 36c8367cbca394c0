"""Kept results: stored with their input images, read back byte for byte, purged by age and count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from storage.models import KeptImage, KeptResult, utcnow
from storage.results import InputImage, ResultRecord, get_result, keep_result, purge_results

DAYS = 7.0


def record(job_id: str, user_id: str = "alice", **changes) -> ResultRecord:
    values = dict(job_id=job_id, platform="discord", user_id=user_id, method="adain",
                  options={"strength": 0.6, "size": 512}, seed=2**32 - 1, prompt=None,
                  preset="night", style_weights=[0.25, 0.75], space="guild", room="channel",
                  info={"seconds": 1.5, "device": "cpu", "size": [64, 48]},
                  images=[InputImage("content", b"\x89PNG content", "photo.png"),
                          InputImage("style", b"style one", "a.png", from_preset=True),
                          InputImage("style", b"style two", "b.png"),
                          InputImage("mask", b"\x00mask\xff", "mask.png")])
    values.update(changes)
    return ResultRecord(**values)


async def age(db, job_id: str, days: float) -> None:
    """Make a kept result look ``days`` old."""
    async with db.write() as session:
        await session.execute(update(KeptResult).where(KeptResult.job_id == job_id)
                              .values(created_at=utcnow() - timedelta(days=days)))


async def count(db, model) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_a_kept_result_reads_back_as_it_was_written(db):
    written = record("a1b2c3d4")
    assert await keep_result(db, written, keep_days=DAYS, per_user=10) == 0
    read = await get_result(db, "a1b2c3d4", keep_days=DAYS)
    assert read.created_at is not None
    assert read == ResultRecord(**{**written.__dict__, "created_at": read.created_at})
    assert [(i.role, i.data, i.from_preset) for i in read.images] == [
        ("content", b"\x89PNG content", False), ("style", b"style one", True),
        ("style", b"style two", False), ("mask", b"\x00mask\xff", False)]
    assert read.seed == 2**32 - 1  # seeds reach 2**32 - 1: wider than a 32-bit column


async def test_unknown_and_hostile_ids_find_nothing(db):
    await keep_result(db, record("a1b2c3d4"), keep_days=DAYS, per_user=10)
    for job_id in ("ffffffff", "", "a1b2c3d4' OR '1'='1", "x" * 500):
        assert await get_result(db, job_id, keep_days=DAYS) is None


async def test_old_results_are_purged_with_their_images_and_never_answered(db):
    await keep_result(db, record("old1"), keep_days=DAYS, per_user=10)
    await keep_result(db, record("old2", user_id="bob"), keep_days=DAYS, per_user=10)
    await age(db, "old1", DAYS + 0.1)
    await age(db, "old2", DAYS + 0.1)
    # run out but not purged yet: never answered
    assert await get_result(db, "old1", keep_days=DAYS) is None
    assert await get_result(db, "old1", keep_days=DAYS + 1) is not None
    # any write purges everyone's run-out results, images included
    assert await keep_result(db, record("new", user_id="carol"), keep_days=DAYS, per_user=10) == 2
    assert await count(db, KeptResult) == 1 and await count(db, KeptImage) == 4
    await age(db, "new", DAYS + 1)
    assert await purge_results(db, keep_days=DAYS) == 1
    assert await count(db, KeptResult) == 0 and await count(db, KeptImage) == 0


async def test_each_user_keeps_at_most_their_newest_results(db):
    purged = []
    for i in range(3):
        purged.append(await keep_result(db, record(f"alice{i}"), keep_days=DAYS, per_user=2))
        await age(db, f"alice{i}", 3 - i)  # alice0 oldest
    assert purged == [0, 0, 1]  # the third went past two: alice0 went
    assert await keep_result(db, record("bob0", user_id="bob"), keep_days=DAYS, per_user=2) == 0
    assert await keep_result(db, record("alice3"), keep_days=DAYS, per_user=2) == 1
    kept = {job for job in ("alice0", "alice1", "alice2", "alice3", "bob0")
            if await get_result(db, job, keep_days=DAYS) is not None}
    assert kept == {"alice2", "alice3", "bob0"}


async def test_a_bad_role_is_refused_before_anything_is_written(db):
    with pytest.raises(ValueError, match="role"):
        await keep_result(db, record("x", images=[InputImage("secret", b"", "s")]),
                          keep_days=DAYS, per_user=2)
    assert await count(db, KeptResult) == 0

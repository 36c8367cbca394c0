"""Result buttons after a restart and from another process: the database keeps what they need.

A "restart" is a new service, queue and database connection on the same database file;
"another process" is a second service working beside the first on one PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from engine.errors import UserError
from engine.events import Done
from engine.request import ImageUpload, Place, Requester
from storage.models import KeptResult, utcnow
from stylebot.service import StyleService
from stylebot.settings import Settings
from tests.engine.conftest import png_bytes, toy_request

ALICE = Requester("test", "alice")
BOB = Requester("test", "bob")
TOO_OLD = "This result is too old for its buttons; run the command again."


def make_settings(tmp_path, **more) -> Settings:
    return Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False,
                    jobs_per_user=10, queue_size=20, **more)


async def finished(service: StyleService, request) -> tuple[str, Done]:
    handle = await service.submit(request)
    final = await handle.wait()
    assert isinstance(final, Done)
    await service.queue.drain_observers()  # the Done observer has kept the result
    return handle.id, final


async def done(handle) -> Done:
    final = await handle.wait()
    assert isinstance(final, Done)
    return final


async def expire(service: StyleService, job_id: str) -> None:
    """Make a kept result a day older than the retention."""
    async with service.db.write() as session:
        await session.execute(update(KeptResult).where(KeptResult.job_id == job_id).values(
            created_at=utcnow() - timedelta(days=service.settings.results_kept_days + 1)))


async def made_before(service: StyleService) -> dict[str, tuple[str, Done]]:
    """Three results: plain (toyfade), with a posted style image, with Alice's private preset."""
    plain = toy_request("alice", method="toyfade", strength="0.6", seed="7")
    plain.place = Place("guild", "channel")
    posted = toy_request("alice", method="toystyle", steps="3")
    posted.styles = [ImageUpload(png_bytes((20, 20), (0, 0, 255)), "posted.png")]
    await service.save_preset(ALICE, "night", "toystyle", {"steps": "2"},
                              [ImageUpload(png_bytes((40, 40), (0, 255, 0)), "secret.png")])
    private = toy_request("alice", method=None)
    private.preset = "night"
    return {"plain": await finished(service, plain), "posted": await finished(service, posted),
            "private": await finished(service, private)}


@pytest.fixture
async def restarted(tmp_path, toy_methods):
    """Results made by one service, then that service gone and a fresh one on the same file."""
    before = await StyleService.open(make_settings(tmp_path))
    try:
        made = await made_before(before)
    finally:
        await before.close(grace_s=1)
    after = await StyleService.open(make_settings(tmp_path))
    assert after.queue.get(made["plain"][0]) is None  # nothing in the new queue's memory
    yield after, made
    toy_methods.GATE.set()
    await after.close(grace_s=1)


async def test_reroll_stronger_and_weaker_work_after_a_restart(restarted):
    service, made = restarted
    job_id, original = made["plain"]
    kept = await service.result(job_id)
    assert kept.request.content.data == png_bytes()  # the very photo, byte for byte
    assert kept.request.place == Place("guild", "channel")

    reroll = await service.rerun(job_id, "reroll", ALICE)
    rerolled = await done(reroll)
    assert reroll.options["strength"] == 0.6 and reroll.seed != 7
    assert rerolled.image.getpixel((5, 5)) == original.image.getpixel((5, 5))  # same photo, same fade

    stronger = await service.rerun(job_id, "stronger", ALICE)
    assert (await done(stronger)).meta.seed == 7 and stronger.options["strength"] == 0.8
    weaker = await service.rerun(job_id, "weaker", BOB)  # anyone may, as before a restart
    assert (await done(weaker)).meta.seed == 7 and weaker.options["strength"] == 0.4
    assert weaker.requester == BOB


async def test_info_and_save_work_after_a_restart(restarted):
    service, made = restarted
    job_id, original = made["plain"]
    meta = (await service.result(job_id)).meta
    assert (meta.method, meta.seed, meta.size, meta.device) == (
        original.meta.method, original.meta.seed, original.meta.size, original.meta.device)
    assert meta.options["strength"] == 0.6 and meta.seconds == pytest.approx(original.meta.seconds)

    saved = await service.save_result(job_id, ALICE, "faded")
    assert (saved.method, saved.options) == ("toyfade", {"strength": 0.6})  # the seed left out

    posted_id, _ = made["posted"]
    mine = await service.save_result(posted_id, ALICE, "mine")
    assert [s.filename for s in mine.styles] == ["posted.png"]
    theirs = await service.save_result(posted_id, BOB, "copied")
    assert (theirs.method, theirs.options, theirs.styles) == ("toystyle", {"steps": 3}, [])


@pytest.mark.security
async def test_a_private_preset_result_answers_its_owner_only_after_a_restart(restarted):
    service, made = restarted
    job_id, _ = made["private"]
    for action, words in (("reroll", "re-roll it"), ("save", "save it as a preset")):
        with pytest.raises(UserError, match=f"^Only the person who asked for this result can {words}"):
            await service.check_click(job_id, action, BOB)
    with pytest.raises(UserError, match="Only the person who asked for this result"):
        await service.rerun(job_id, "reroll", BOB)
    with pytest.raises(UserError, match="Only the person who asked for this result"):
        await service.save_result(job_id, BOB, "stolen")
    assert service.jobs_of(BOB) == [] and await service.list_presets(BOB) == []

    again = await service.rerun(job_id, "reroll", ALICE)  # the owner keeps every button
    await done(again)
    assert [s.filename for s in service.recent_result(again.id).request.styles] == ["secret.png"]
    copy = await service.save_result(job_id, ALICE, "night2")
    assert [s.filename for s in copy.styles] == ["secret.png"]


async def test_a_purged_or_unknown_result_says_too_old(restarted):
    service, made = restarted
    job_id, _ = made["plain"]
    await expire(service, job_id)
    for click in (lambda: service.rerun(job_id, "reroll", ALICE),
                  lambda: service.save_result(job_id, ALICE, "x"),
                  lambda: service.check_click("feedbeef", "stronger", ALICE)):
        with pytest.raises(UserError, match=f"^{TOO_OLD}$"):
            await click()


async def test_a_start_purges_what_ran_out_while_the_bot_was_down(restarted):
    from sqlalchemy import select

    service, made = restarted
    job_id, _ = made["plain"]
    await expire(service, job_id)
    again = await StyleService.open(service.settings)
    try:
        async with again.db.session() as session:
            left = set((await session.scalars(select(KeptResult.job_id))).all())
        assert left == {made["posted"][0], made["private"][0]}
    finally:
        await again.close(grace_s=1)


async def test_failed_jobs_are_not_kept(tmp_path, toy_methods):
    service = await StyleService.open(make_settings(tmp_path))
    try:
        handle = await service.submit(toy_request("alice", fail="user"))
        assert not isinstance(await handle.wait(), Done)
        await service.queue.drain_observers()
        assert service.queue.get(handle.id) is not None
        with pytest.raises(UserError, match=TOO_OLD):
            await service.check_click(handle.id, "reroll", ALICE)
    finally:
        await service.close(grace_s=1)


async def test_the_operators_own_front_ends_keep_nothing(tmp_path, toy_methods):
    """CLI and playground results have no buttons: their images stay out of the database."""
    from sqlalchemy import select

    service = await StyleService.open(make_settings(tmp_path))
    try:
        for platform in ("cli", "playground", "slack"):
            request = toy_request(method="toy")
            request.requester = Requester(platform, "me")
            await finished(service, request)
        async with service.db.session() as session:
            assert (await session.scalars(select(KeptResult.platform))).all() == ["slack"]
    finally:
        await service.close(grace_s=1)


@pytest.mark.postgres
async def test_a_second_process_on_postgres_answers_the_first_ones_buttons(tmp_path, toy_methods,
                                                                           postgres_url):
    first = await StyleService.open(make_settings(tmp_path / "one", database_url=postgres_url))
    second = await StyleService.open(make_settings(tmp_path / "two", database_url=postgres_url))
    try:
        made = await made_before(first)
        job_id, _ = made["plain"]
        assert second.queue.get(job_id) is None
        stronger = await second.rerun(job_id, "stronger", BOB)
        assert (await done(stronger)).meta.seed == 7 and stronger.options["strength"] == 0.8
        saved = await second.save_result(job_id, ALICE, "faded")
        assert saved.options == {"strength": 0.6}
        private_id, _ = made["private"]
        with pytest.raises(UserError, match="Only the person who asked for this result can re-roll it"):
            await second.rerun(private_id, "reroll", BOB)
        again = await second.rerun(private_id, "reroll", ALICE)
        await done(again)
        await second.queue.drain_observers()
        # and the second process's result answers in the first, still private
        with pytest.raises(UserError, match="Only the person who asked for this result"):
            await first.check_click(again.id, "save", BOB)
        assert (await first.check_click(again.id, "save", ALICE)).request.styles[0].filename == "secret.png"
    finally:
        toy_methods.GATE.set()
        await second.close(grace_s=1)
        await first.close(grace_s=1)

"""The Info button's answer: how a result was made, told to whoever may click, after a restart too."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.request import ImageUpload, Place, Requester
from storage import results as result_store
from stylebot.service import StyleService
from tests.bot.clips import clip_toys, flat_frames, gif_bytes
from tests.engine.conftest import png_bytes, toy_request
from tests.stylebot.test_kept_results import TOO_OLD, finished, make_settings

assert clip_toys  # the fixture, imported for pytest to find

ALICE = Requester("test", "alice")
BOB = Requester("test", "bob")


@pytest.fixture
async def service(tmp_path, toy_methods):
    svc = await StyleService.open(make_settings(tmp_path))
    yield svc
    toy_methods.GATE.set()
    await svc.close(grace_s=1)


async def restart(service: StyleService) -> StyleService:
    """The process ends and a new one starts on the same database: nothing in memory."""
    await service.close(grace_s=1)
    return await StyleService.open(service.settings)


async def test_info_says_how_a_result_was_made_and_the_command_that_makes_it_again(service):
    request = toy_request("alice", method="toyfade", strength="0.6", seed="7")
    request.place = Place("guild", "channel")
    job_id, done = await finished(service, request)

    info = await service.result_info(job_id, BOB)  # anyone who sees the result may ask
    assert info.lines[0].endswith(", method toyfade")
    assert info.lines[1:] == ["Options: strength=0.6", "Seed: 7", "Size: 32x24",
                              f"Time: {done.meta.seconds:.1f} s on cpu", f"Job: {job_id}"]
    assert info.command == "/stylize method:toyfade strength:0.6 seed:7"


async def test_a_blend_of_posted_style_images_is_part_of_the_command(service):
    request = toy_request("alice", method="toystyle", steps="3")
    request.styles = [ImageUpload(png_bytes((20, 20), (0, 0, 255)), "a.png"),
                      ImageUpload(png_bytes((20, 20), (255, 0, 0)), "b.png")]
    request.style_weights = [0.75, 0.25]
    job_id, _ = await finished(service, request)
    info = await service.result_info(job_id, BOB)
    assert "Options: steps=3" in info.lines
    assert info.command.startswith("/stylize method:toystyle steps:3") and "blend:0.75,0.25" in info.command
    assert not any("a.png" in line or "b.png" in line for line in info.lines)  # no input is described


@pytest.mark.security
async def test_a_private_preset_result_tells_its_owner_only_and_names_the_preset_to_her_alone(service):
    await service.save_preset(ALICE, "night", "toystyle", {"steps": "2"},
                              [ImageUpload(png_bytes((40, 40), (0, 255, 0)), "secret.png")])
    private = toy_request("alice", method=None)
    private.preset = "night"
    job_id, _ = await finished(service, private)
    with pytest.raises(UserError, match="^Only the person who asked for this result can see its "
                                        "settings: it was made with their private preset"):
        await service.result_info(job_id, BOB)
    mine = await service.result_info(job_id, ALICE)
    assert "Preset: night (yours)" in mine.lines and "Options: steps=2" in mine.lines

    await service.save_preset(ALICE, "faded", "toyfade", {"strength": "0.3"})  # no style images
    plain = toy_request("alice", method=None, seed="4")
    plain.preset = "faded"
    job_id, _ = await finished(service, plain)
    theirs = await service.result_info(job_id, BOB)  # open to Bob, as its other buttons are
    assert "Options: strength=0.3" in theirs.lines
    assert not any("faded" in line for line in theirs.lines + [theirs.command])  # her preset's name
    assert "Preset: faded (yours)" in (await service.result_info(job_id, ALICE)).lines


async def test_an_unknown_or_purged_result_says_too_old(service):
    job_id, _ = await finished(service, toy_request("alice", method="toyfade"))
    with pytest.raises(UserError, match=f"^{TOO_OLD}$"):
        await service.result_info("feedbeef", ALICE)
    fresh = await restart(service)
    try:
        await result_store.purge_results(fresh.db, keep_days=1e-9)  # its retention ran out
        with pytest.raises(UserError, match=f"^{TOO_OLD}$"):
            await fresh.result_info(job_id, ALICE)
    finally:
        await fresh.close(grace_s=1)


@pytest.mark.usefixtures("clip_toys")
async def test_info_on_a_clip_after_a_restart_reads_what_the_database_kept(service):
    request = toy_request("alice", method="toyclip")
    request.content = ImageUpload(gif_bytes(flat_frames(6), duration_ms=100), "dance.gif")
    job_id, done = await finished(service, request)
    before = await service.result_info(job_id, ALICE)
    fresh = await restart(service)
    try:
        assert fresh.recent_result(job_id) is None  # not in the new queue's memory
        after = await fresh.result_info(job_id, ALICE)
        assert after == before
        assert "Clip: 6 frames at 10 fps (0.6 s)" in after.lines
        assert f"Size: {done.meta.size[0]}x{done.meta.size[1]}" in after.lines
    finally:
        await fresh.close(grace_s=1)

"""The service: presets fill requests, users are isolated, jobs are logged in storage."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from engine.errors import OptionError, PresetNotFound
from engine.events import Cancelled, Done
from engine.request import ImageUpload, Requester
from stylebot.settings import Settings
from storage import jobs as job_log
from stylebot.service import StyleService
from tests.engine.conftest import png_bytes, toy_request

ALICE = Requester("test", "alice")
BOB = Requester("test", "bob")


@pytest.fixture
async def service(tmp_path, toy_methods):
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False)
    svc = await StyleService.open(settings)
    yield svc
    toy_methods.GATE.set()
    await svc.close(grace_s=1)


async def test_a_preset_fills_method_options_and_styles(service):
    style = png_bytes((40, 40), (0, 255, 0))
    saved = await service.save_preset(ALICE, "Night", "toystyle", {"steps": "3", "tag": "from-preset"},
                                      [ImageUpload(style, "green.png")])
    assert saved.options == {"steps": 3, "tag": "from-preset"} and len(saved.styles) == 1
    request = toy_request("alice", method=None)
    request.preset = "night"  # case-insensitive
    request.options = {"tag": "override"}
    handle = await service.submit(request)
    final = await handle.wait()
    assert isinstance(final, Done)
    assert handle.prepared.method.name == "toystyle"
    assert handle.prepared.options["steps"] == 3 and handle.prepared.options["tag"] == "override"
    assert handle.prepared.input.styles[0].getpixel((0, 0)) == (0, 255, 0)
    listed = await service.list_presets(ALICE)
    assert [(p.name, p.use_count) for p in listed] == [("Night", 1)]


async def test_preset_style_images_are_stored_not_referenced(service):
    big = io.BytesIO()
    Image.new("RGB", (3000, 1500), (9, 9, 9)).save(big, "JPEG")
    saved = await service.save_preset(ALICE, "big", "toystyle", {}, [ImageUpload(big.getvalue(), "b.jpg")])
    stored = Image.open(io.BytesIO(saved.styles[0].data))
    assert stored.format == "PNG" and stored.size == (1024, 512)


async def test_other_users_presets_are_not_found(service):
    await service.save_preset(ALICE, "mine", "toystyle", {}, [ImageUpload(png_bytes(), "s.png")])
    request = toy_request("bob", method=None)
    request.preset = "mine"
    with pytest.raises(PresetNotFound, match="no preset named 'mine'"):
        await service.submit(request)
    with pytest.raises(PresetNotFound):
        await service.delete_preset(BOB, "mine")
    assert [p.name for p in await service.list_presets(ALICE)] == ["mine"]


async def test_preset_for_another_method_is_refused(service):
    await service.save_preset(ALICE, "p", "toystyle", {}, [ImageUpload(png_bytes(), "s.png")])
    request = toy_request("alice", method="toy")
    request.preset = "p"
    with pytest.raises(OptionError, match="Preset 'p' is for method 'toystyle', not 'toy'"):
        await service.submit(request)


async def test_presets_are_validated_before_saving(service):
    with pytest.raises(OptionError, match="'steps' is 0"):
        await service.save_preset(ALICE, "bad", "toy", {"steps": 0})
    with pytest.raises(OptionError, match="Unknown method 'picasso'"):
        await service.save_preset(ALICE, "bad", "picasso", {})
    with pytest.raises(OptionError, match="takes no style image"):
        await service.save_preset(ALICE, "bad", "toy", {}, [ImageUpload(png_bytes(), "s.png")])
    assert await service.list_presets(ALICE) == []


async def test_jobs_are_logged_from_queued_to_done(service):
    handle = await service.submit(toy_request("alice"))
    await handle.wait()
    await service.queue.drain_observers()
    record = await job_log.get_job(service.db, handle.id)
    assert record.status == "done" and record.method == "toy" and record.device == "cpu"
    assert record.seconds is not None and record.user_id == "alice"


async def test_cancel_without_id_cancels_the_newest(service, toy_methods):
    toy_methods.GATE.clear()
    first = await service.submit(toy_request("alice", wait=True))
    second = await service.submit(toy_request("alice", dims=(10, 10)))
    assert [j.job_id for j in service.jobs_of(ALICE)] == [first.id, second.id]
    assert service.cancel(ALICE) == second.id
    assert isinstance(await second.wait(), Cancelled)
    toy_methods.GATE.set()
    assert isinstance(await first.wait(), Done)
    await service.queue.drain_observers()
    assert (await job_log.get_job(service.db, second.id)).status == "cancelled"


async def test_a_restart_marks_unfinished_jobs_interrupted(tmp_path, toy_methods):
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False)
    svc = await StyleService.open(settings)
    toy_methods.GATE.clear()
    handle = await svc.submit(toy_request("alice", wait=True))
    await svc.queue.drain_observers()
    await svc.db.close()  # the process dies without a clean queue shutdown
    toy_methods.GATE.set()
    await svc.queue.stop(grace_s=1)
    again = await StyleService.open(settings)
    try:
        assert (await job_log.get_job(again.db, handle.id)).status == "interrupted"
    finally:
        await again.close()

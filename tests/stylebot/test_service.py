"""The service: presets fill requests, users are isolated, jobs are logged in storage."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from engine.errors import OptionError, PresetNotFound, UserError
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
    assert handle.method == "toystyle"
    assert handle.options["steps"] == 3 and handle.options["tag"] == "override"
    assert final.image.getpixel((0, 0)) == (55, 225, 225)  # the content, inverted
    assert service.result(handle.id).request.styles[0].filename == "green.png"
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


# -- the rules every platform shares -----------------------------------------------------------

SLACK_USER = Requester("slack", "U1")
DISCORD_USER = Requester("discord", "42")


@pytest.mark.parametrize("requester", [SLACK_USER, DISCORD_USER], ids=["slack", "discord"])
async def test_the_chat_rate_limit_binds_every_chat_platform(tmp_path, toy_methods, requester):
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False,
                        chat_rate_limit=2, jobs_per_user=10, queue_size=10)
    svc = await StyleService.open(settings)
    try:
        for _ in range(2):
            await (await svc.submit(toy_request(method="toy") | _as(requester))).wait()
        with pytest.raises(UserError, match="Slow down: you can start 2 jobs every 60 s"):
            await svc.submit(toy_request(method="toy") | _as(requester))
        # the operator's own front ends are not limited
        for _ in range(3):
            await (await svc.submit(toy_request(method="toy") | _as(Requester("cli", "me")))).wait()
    finally:
        await svc.close(grace_s=1)


def _as(requester):
    """``request | _as(r)``: the request, sent by ``r``."""
    class As:
        def __ror__(self, request):
            request.requester = requester
            return request
    return As()


def test_one_check_refuses_what_cannot_work_before_anything_is_fetched(toy_methods):
    check = StyleService.check
    with pytest.raises(OptionError, match="Method 'toy' takes no prompt; remove it"):
        check("toy", {}, prompt="a fox")
    with pytest.raises(OptionError, match="steps"):
        check("toy", {"steps": "many"})
    with pytest.raises(OptionError, match="needs a style image"):
        check("toystyle", {}, n_styles=0)
    assert check("toystyle", {"steps": "2"}).name == "toystyle"  # images not counted yet
    assert check("toystyle", {}, n_styles=1).name == "toystyle"


async def test_submit_applies_the_same_check(service):
    request = toy_request("alice", method="toy")
    request.prompt = "a fox"
    with pytest.raises(OptionError, match="takes no prompt"):
        await service.submit(request)


async def test_buttons_under_a_result_and_what_their_clicks_run(service):
    handle = await service.submit(toy_request("alice", method="toyfade", strength="0.9", seed="7"))
    assert isinstance(await handle.wait(), Done)
    assert service.result_actions(handle.id) == ["reroll", "stronger", "weaker", "save"]

    stronger = await service.rerun(handle.id, "stronger", BOB)  # anyone may click
    assert isinstance(await stronger.wait(), Done)
    assert stronger.requester == BOB and stronger.options["strength"] == 1.0 and stronger.seed == 7
    assert service.result_actions(stronger.id) == ["reroll", "weaker", "save"]  # no room left
    with pytest.raises(UserError, match="'strength' is already at its maximum"):
        await service.rerun(stronger.id, "stronger", ALICE)

    reroll = await service.rerun(handle.id, "reroll", ALICE)
    assert isinstance(await reroll.wait(), Done)
    assert reroll.options["strength"] == 0.9 and reroll.seed != 7


async def test_save_result_keeps_the_chosen_options_not_the_seed(service):
    handle = await service.submit(toy_request("alice", method="toyfade", strength="0.3", seed="5"))
    await handle.wait()
    record = await service.save_result(handle.id, ALICE, "faded")
    assert (record.method, record.options) == ("toyfade", {"strength": 0.3})


async def test_a_forgotten_result_says_so(service):
    with pytest.raises(UserError, match="too old to re-roll"):
        await service.rerun("feedbeef", "reroll", ALICE)
    with pytest.raises(UserError, match="too old to save as a preset"):
        await service.save_result("feedbeef", ALICE, "x")
    assert service.result_actions("feedbeef") == []


async def test_a_job_is_found_only_by_its_requester(service):
    handle = await service.submit(toy_request("alice", method="toy"))
    await handle.wait()
    assert service.job(Requester("test", "alice"), handle.id).id == handle.id
    assert service.job(BOB, handle.id) is None


async def test_the_job_log_duration_is_run_time_whatever_the_ending(service, toy_methods):
    """Done, failed and cancelled jobs all log the seconds they ran, never their wait."""
    toy_methods.GATE.clear()
    blocker = await service.submit(toy_request("alice", wait=True, tag="blocker"))
    failing = await service.submit(toy_request("bob", fail="bug", dims=(10, 10)))
    never_ran = await service.submit(toy_request("carol", dims=(12, 12)))
    await asyncio.sleep(0.4)  # everyone waits behind the blocker
    service.cancel(Requester("test", "carol"))
    toy_methods.GATE.set()
    for handle in (blocker, failing, never_ran):
        await handle.wait()
    await service.queue.drain_observers()
    done, failed, cancelled = [await job_log.get_job(service.db, h.id) for h in (blocker, failing, never_ran)]
    assert (done.status, failed.status, cancelled.status) == ("done", "failed", "cancelled")
    assert done.seconds >= 0.3  # it ran while blocked
    assert failed.seconds < 0.3  # it failed at once, after waiting 0.4 s
    assert cancelled.seconds is None  # it never ran


def _listing(tmp_path, device="cpu", **settings):
    from engine.engine import StyleEngine
    from stylebot.service import describe_methods

    empty = tmp_path / "no-weights"
    empty.mkdir(exist_ok=True)
    engine = StyleEngine(Settings(home=tmp_path, device=device, weights_dir=empty,
                                  allow_downloads=False, **settings), device=device)
    return {m["name"]: m for m in describe_methods(engine)}


def test_fast_is_listed_ready_right_after_install_with_the_models_it_has(tmp_path):
    fast = _listing(tmp_path)["fast"]
    assert fast["status"] == "ready" and fast["ready"] is True
    assert fast["weights"] == {"multistyle26": "wheel"}  # its default without candy
    assert fast["models"] == ["26:<0..25>"]


def test_nada_on_a_cpu_server_is_listed_as_needing_a_gpu(tmp_path):
    assert _listing(tmp_path)["nada"]["status"] == "needs a GPU"
    assert _listing(tmp_path)["nada"]["ready"] is False
    # Where it could run, what it lacks is its weights.
    assert _listing(tmp_path, allow_cpu_nada=True)["nada"]["status"] == "weights missing"
    assert _listing(tmp_path, device="cuda")["nada"]["status"] == "weights missing"
    assert _listing(tmp_path)["sd"]["status"] == "weights missing"

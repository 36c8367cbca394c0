"""The service: presets fill requests, users are isolated, jobs are logged in storage."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import pytest
from PIL import Image

from engine.errors import OptionError, PresetNotFound, UserError
from engine.events import Cancelled, Done
from engine.request import ImageUpload, Requester
from stylebot.settings import Settings
from storage import jobs as job_log
from stylebot.owners import Owner
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
    assert service.recent_result(handle.id).request.styles[0].filename == "green.png"
    listed = await service.list_presets(ALICE)
    assert [(p.name, p.use_count) for p in listed] == [("Night", 1)]


async def test_an_old_preset_saved_with_alpha_takes_a_typed_strength(service):
    """Presets saved before adain's alpha became strength still hold 'alpha'; typing strength
    with one overrides it instead of being refused as the same option twice."""
    from storage import presets as preset_store
    from storage.presets import StyleBlob

    await preset_store.save_preset(service.db, "test", "alice", "old", "adain", {"alpha": 0.8},
                                   [StyleBlob(data=png_bytes(), weight=1.0, mime="image/png",
                                              filename="s.png")])
    request = toy_request("alice", method=None, strength="0.3")
    request.preset = "old"
    handle = await service.submit(request)
    assert handle.method == "adain" and handle.options["strength"] == 0.3
    request = toy_request("alice", method=None)
    request.preset = "old"
    assert (await service.submit(request)).options["strength"] == 0.8


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


@pytest.mark.postgres
async def test_the_service_runs_a_job_and_a_preset_on_postgres(tmp_path, toy_methods, postgres_url):
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False,
                        database_url=postgres_url)
    svc = await StyleService.open(settings)
    try:
        assert svc.db.is_postgres
        handle = await svc.submit(toy_request("alice"))
        assert isinstance(await handle.wait(), Done)
        await svc.queue.drain_observers()
        record = await job_log.get_job(svc.db, handle.id)
        assert record.status == "done" and record.seconds is not None
        assert record.queued_at.tzinfo is not None
        await svc.save_preset(ALICE, "Night", "toystyle", {"steps": "3"},
                              [ImageUpload(png_bytes((40, 40), (0, 255, 0)), "green.png")])
        request = toy_request("alice", method=None)
        request.preset = "NIGHT"
        assert isinstance(await (await svc.submit(request)).wait(), Done)
        listed = await svc.list_presets(ALICE)
        assert [(p.name, p.use_count, p.style_count) for p in listed] == [("Night", 1, 1)]
    finally:
        toy_methods.GATE.set()
        await svc.close(grace_s=1)


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


def dead_process_owner() -> Owner:
    """The owner identity of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = Owner.of_process(child.pid)
    child.wait()
    return owner


async def test_a_restart_marks_unfinished_jobs_interrupted(tmp_path, toy_methods):
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False)
    svc = await StyleService.open(settings, owner=dead_process_owner())
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


@pytest.mark.security
async def test_a_command_run_beside_a_working_server_leaves_its_jobs_alone(tmp_path, toy_methods):
    """`stylebot presets list` while the bot works marked the bot's live jobs interrupted."""
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False)
    server = await StyleService.open(settings)
    toy_methods.GATE.clear()
    try:
        handle = await server.submit(toy_request("alice", wait=True))
        await server.queue.drain_observers()
        cli = await StyleService.open(settings)  # another process's start-up, same database
        await cli.close()
        assert (await job_log.get_job(server.db, handle.id)).status in ("queued", "running")
        toy_methods.GATE.set()
        assert isinstance(await handle.wait(), Done)
        await server.queue.drain_observers()
        assert (await job_log.get_job(server.db, handle.id)).status == "done"
    finally:
        toy_methods.GATE.set()
        await server.close(grace_s=1)


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


def test_one_check_refuses_what_cannot_work_before_anything_is_fetched(service):
    check = service.check
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
    assert service.result_actions(handle.id) == ["reroll", "stronger", "weaker", "save", "info"]

    stronger = await service.rerun(handle.id, "stronger", BOB)  # anyone may click
    assert isinstance(await stronger.wait(), Done)
    assert stronger.requester == BOB and stronger.options["strength"] == 1.0 and stronger.seed == 7
    assert service.result_actions(stronger.id) == ["reroll", "weaker", "save", "info"]  # no room left
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
    with pytest.raises(UserError, match="This result is too old for its buttons"):
        await service.rerun("feedbeef", "reroll", ALICE)
    with pytest.raises(UserError, match="This result is too old for its buttons"):
        await service.save_result("feedbeef", ALICE, "x")
    assert service.result_actions("feedbeef") == []



async def preset_result(service, owner=ALICE):
    """A result made with the owner's preset 'night', whose style image only the owner has."""
    await service.save_preset(owner, "night", "toystyle", {"steps": "2"},
                              [ImageUpload(png_bytes((40, 40), (0, 255, 0)), "secret.png")])
    request = toy_request(owner.user_id, method=None)
    request.preset = "night"
    handle = await service.submit(request)
    assert isinstance(await handle.wait(), Done)
    return handle


@pytest.mark.security
async def test_others_cannot_reroll_or_save_a_result_made_with_a_private_preset(service):
    handle = await preset_result(service)
    for action, words in (("reroll", "re-roll it"), ("stronger", "make it stronger"),
                          ("weaker", "make it weaker"), ("save", "save it as a preset")):
        with pytest.raises(UserError, match=f"^Only the person who asked for this result can {words}: "
                                            "it was made with their private preset"):
            await service.check_click(handle.id, action, BOB)  # what adapters ask before a form or deferral
    for action in ("reroll", "stronger", "weaker"):
        with pytest.raises(UserError, match="Only the person who asked for this result"):
            await service.rerun(handle.id, action, BOB)
    with pytest.raises(UserError, match="Only the person who asked for this result can save it"):
        await service.save_result(handle.id, BOB, "stolen")
    assert await service.list_presets(BOB) == []
    assert [j.job_id for j in service.jobs_of(BOB)] == []
    with pytest.raises(UserError, match="too old for its buttons"):
        await service.check_click("feedbeef", "reroll", BOB)

    # the owner keeps every button, and what she re-rolls stays hers alone
    assert (await service.check_click(handle.id, "reroll", ALICE)).meta.method == "toystyle"
    again = await service.rerun(handle.id, "reroll", ALICE)
    assert isinstance(await again.wait(), Done)
    assert [s.filename for s in service.recent_result(again.id).request.styles] == ["secret.png"]
    with pytest.raises(UserError, match="Only the person who asked for this result can re-roll it"):
        await service.rerun(again.id, "reroll", BOB)
    copy = await service.save_result(handle.id, ALICE, "night2")
    assert [s.filename for s in copy.styles] == ["secret.png"]


@pytest.mark.security
async def test_results_without_private_style_images_stay_open_to_every_clicker(service):
    """Re-roll, Stronger and Weaker stay open to anyone unless a private preset is involved."""
    posted = toy_request("alice", method="toystyle")
    posted.styles = [ImageUpload(png_bytes((40, 40), (0, 0, 255)), "posted.png")]
    handle = await service.submit(posted)
    assert isinstance(await handle.wait(), Done)
    reroll = await service.rerun(handle.id, "reroll", BOB)
    assert isinstance(await reroll.wait(), Done) and reroll.requester == BOB
    saved = await service.save_result(handle.id, BOB, "blue")
    assert saved.styles == []  # the settings shown under it, not Alice's image

    await service.save_preset(ALICE, "own-style", "toystyle", {"steps": "2"},
                              [ImageUpload(png_bytes((40, 40), (0, 255, 0)), "secret.png")])
    overridden = toy_request("alice", method=None)  # her preset, but with a style image she posted
    overridden.preset, overridden.styles = "own-style", [ImageUpload(png_bytes(), "posted.png")]
    handle = await service.submit(overridden)
    assert isinstance(await handle.wait(), Done)
    assert (await service.check_click(handle.id, "save", BOB)).request.styles[0].filename == "posted.png"

    await service.save_preset(ALICE, "faded", "toyfade", {"strength": "0.3"})  # no style images
    request = toy_request("alice", method=None, seed="4")
    request.preset = "faded"
    handle = await service.submit(request)
    assert isinstance(await handle.wait(), Done)
    weaker = await service.rerun(handle.id, "weaker", BOB)
    assert isinstance(await weaker.wait(), Done) and weaker.options["strength"] == 0.1


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


@pytest.mark.security
@pytest.mark.parametrize("method, options, message", [
    ("fast", {"model": "../../etc"}, "model"),
    ("hub", {"model": "someone/else:evil"}, "this server offers"),
    ("adain", {"decoder": "../../decoder"}, "decoder"),
    ("gatys", {"style_layer_weights": "1,2,nope"}, "style_layer_weights"),
    ("sd", {"model": "some/hub-id"}, "model"),
])
async def test_a_preset_is_validated_when_saved_not_when_first_used(service, method, options, message):
    """A preset with a value its method would refuse is never stored."""
    with pytest.raises(OptionError, match=message):
        await service.save_preset(ALICE, "bad", method, options,
                                  [ImageUpload(png_bytes(), "s.png")] if method in ("adain", "gatys") else [])
    assert await service.list_presets(ALICE) == []


@pytest.mark.security
async def test_someone_elses_save_keeps_the_shown_settings_never_the_style_images(service):
    """Style images sent with a command were not shown to others (Discord's reply is private;
    Slack's form uploads are not shared), so another user's Save copies settings only."""
    request = toy_request("alice", method="toystyle", steps="3")
    request.styles = [ImageUpload(png_bytes((20, 20), (0, 0, 255)), "alices-style.png")]
    handle = await service.submit(request)
    await handle.wait()
    theirs = await service.save_result(handle.id, BOB, "copied")
    assert (theirs.method, theirs.options, theirs.styles) == ("toystyle", {"steps": 3}, [])
    mine = await service.save_result(handle.id, Requester("test", "alice"), "mine")
    assert [s.filename for s in mine.styles] == ["alices-style.png"]


def _listing(tmp_path, device="cpu", **settings):
    from engine.engine import StyleEngine
    from stylebot.listings import describe_methods

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


def test_nada_takes_a_reference_image_instead_of_a_prompt(tmp_path):
    """nada owns its prompt rule: a prompt or a style image (reference), exactly one."""
    from stylebot.service import InputError, check_request

    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False)
    assert check_request(settings, "nada", {}, n_styles=1).name == "nada"
    assert check_request(settings, "nada", {}, prompt="a sketch", n_styles=0).name == "nada"
    check_request(settings, "nada", {})  # images not counted yet: nothing to say
    with pytest.raises(InputError, match="needs a text prompt or a style image") as err:
        check_request(settings, "nada", {}, n_styles=0)
    assert err.value.field == "prompt"
    with pytest.raises(InputError, match="not both"):
        check_request(settings, "nada", {}, prompt="a sketch", n_styles=1)
    with pytest.raises(InputError, match="needs a text prompt, e.g."):  # sd still needs its prompt
        check_request(settings, "sd", {}, n_styles=0)

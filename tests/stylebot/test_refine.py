"""quality=refine in the service: a draft job, then gatys started from the draft's image;
Stop refining (its owner only) keeps the draft. Stand-ins take hub's and gatys' places
(``refine_toys``), so every run is instant; gatys' real options and checks still apply."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from engine.errors import UserError
from engine.events import Cancelled, Done
from engine.request import ImageUpload, Requester, StyleRequest
from stylebot import refine
from stylebot.service import InputError, StyleService
from stylebot.settings import Settings
from tests.engine.conftest import png_bytes
from tests.stylebot import refine_toys

ALICE = Requester("test", "alice")
BOB = Requester("test", "bob")


@pytest.fixture
async def service(tmp_path, monkeypatch):
    refine_toys.register(monkeypatch)
    settings = Settings(home=tmp_path, device="cpu", weights_dir=None, allow_downloads=False)
    svc = await StyleService.open(settings)
    yield svc
    refine_toys.unregister()
    await svc.close(grace_s=1)


def refine_request(method=None, **options) -> StyleRequest:
    return StyleRequest(method=method, content=ImageUpload(png_bytes((48, 32), (200, 30, 30)), "c.png"),
                        requester=ALICE, styles=[ImageUpload(png_bytes((20, 20), (0, 0, 200)), "s.png")],
                        options={"quality": "refine", **options})


async def refined(service, draft_id):
    refinement = service.refinement(draft_id)
    assert refinement is not None
    return refinement, await asyncio.wait_for(refinement.refinement(), 5)


async def test_refine_is_a_draft_then_gatys_with_the_options_each_takes(service):
    draft = await service.submit(refine_request(iterations="7", style_weight="1e5", size="64",
                                                seed="3", preserve_color="true", tv_weight="2"))
    assert draft.method == "hub"
    assert {k: draft.options[k] for k in ("size", "preserve_color")} == \
        {"size": 64, "preserve_color": True}
    assert "seed" not in draft.options  # hub has none; gatys keeps it
    assert draft.options["strength"] == 1.0  # gatys' strength would be its slider: not the draft's
    assert isinstance(await draft.wait(), Done)

    _, job = await refined(service, draft.id)
    assert job.method == "gatys"
    assert {k: job.options[k] for k in ("iterations", "style_weight", "size", "tv_weight",
                                        "preserve_color", "init", "seed")} == \
        {"iterations": 7, "style_weight": 1e5, "size": 64, "tv_weight": 2.0, "preserve_color": True,
         "init": "content", "seed": 3}
    assert "quality" not in job.options and "quality" not in draft.options
    assert isinstance(await job.wait(), Done)


async def test_refine_starts_gatys_from_the_draft_image(service):
    draft = await service.submit(refine_request(size="64"))
    done = await draft.wait()
    _, job = await refined(service, draft.id)
    final = await job.wait()
    assert isinstance(final, Done)

    start = service.queue.get(job.id).prepared.input.init_image
    assert start is not None and start.size == done.image.size
    assert np.array_equal(np.asarray(start), np.asarray(done.image))  # lossless, pixel for pixel
    assert len(refine_toys.STARTS) == 1
    assert np.array_equal(np.asarray(refine_toys.STARTS[0]), np.asarray(done.image))
    assert not np.array_equal(np.asarray(final.image), np.asarray(done.image))  # it was replaced


async def test_refine_stop_cancels_gatys_and_keeps_the_draft(service):
    refine_toys.GATE.clear()
    draft = await service.submit(refine_request())
    done = await draft.wait()
    refinement, job = await refined(service, draft.id)
    assert service.result_actions(draft.id) == [refine.STOP]  # nothing else while refining

    await service.stop_refining(draft.id, ALICE)
    final = await asyncio.wait_for(job.wait(), 5)
    assert isinstance(final, Cancelled) and final.reason == refine.STOPPED
    assert refinement.stopped and not refinement.active
    kept = await service.result(draft.id)
    assert kept is not None and kept.meta.method == "hub"
    assert np.array_equal(np.asarray(service.queue.get(draft.id).final.image), np.asarray(done.image))
    assert refine.STOP not in service.result_actions(draft.id)  # the draft's own buttons are back
    assert "save" in service.result_actions(draft.id)
    with pytest.raises(UserError, match="not being refined any more"):
        await service.stop_refining(draft.id, ALICE)


async def test_refine_someone_else_cannot_stop_it(service):
    refine_toys.GATE.clear()
    draft = await service.submit(refine_request())
    await draft.wait()
    refinement, job = await refined(service, draft.id)
    with pytest.raises(UserError, match="Only the person who asked for this picture can stop"):
        await service.stop_refining(draft.id, BOB)
    assert refinement.active and not job.final
    refine_toys.GATE.set()
    assert isinstance(await asyncio.wait_for(job.wait(), 5), Done)
    assert not refinement.active
    assert refine.STOP not in service.result_actions(draft.id)


async def test_refine_stopped_before_the_refinement_is_queued_never_queues_it(service):
    draft = await service.submit(refine_request())
    refinement = service.refinement(draft.id)
    refinement.stop()  # the service's Stop path needs the draft's result; the rule does not
    await draft.wait()
    assert await asyncio.wait_for(refinement.refinement(), 5) is None
    assert refine_toys.STARTS == []


async def test_refine_a_failed_draft_queues_no_refinement(service):
    request = refine_request()
    request.content = ImageUpload(png_bytes((48, 32)), "c.png")
    draft = await service.submit(request)
    draft.cancel()
    assert isinstance(await draft.wait(), Cancelled)
    refinement = service.refinement(draft.id)
    assert await asyncio.wait_for(refinement.refinement(), 5) is None
    assert refinement.problem == "the draft did not finish" and not refinement.active


@pytest.mark.parametrize("method, options, message", [
    ("fast", {}, "quality=refine drafts at once and then refines with gatys"),
    (None, {"init": "noise"}, "quality=refine starts from the draft; leave out init"),
    (None, {"quality": "best"}, "Option 'quality' is 'best'; it must be one of: full, refine"),
    (None, {"iterations": "0"}, "iterations"),
])
async def test_refine_requests_that_cannot_work_are_refused_before_queueing(service, method, options,
                                                                         message):
    with pytest.raises(InputError, match=message):
        service.check(method, {"quality": "refine", **options})
    with pytest.raises(UserError, match=message):
        await service.submit(refine_request(method, **options))
    assert service.queue.waiting_count == 0 and service.queue.running_count == 0


async def test_refine_full_quality_is_a_plain_job(service):
    request = refine_request("gatys", quality="full")
    handle = await service.submit(request)
    assert handle.method == "gatys" and service.refinement(handle.id) is None
    assert isinstance(await handle.wait(), Done)
    assert refine_toys.STARTS == [None]


def test_refine_drafts_with_adain_where_its_weights_are_else_hub(tmp_path):
    from engine.engine import StyleEngine
    from engine.methods import get_method

    bare = Settings(home=tmp_path / "a", device="cpu", weights_dir=tmp_path / "none",
                    allow_downloads=False)
    assert refine.pick_drafter(StyleEngine(bare)) == "hub"
    weights = tmp_path / "weights"
    engine = StyleEngine(bare.model_copy(update={"weights_dir": weights}))
    adain = get_method("adain")
    for name in adain.weight_names(adain.resolve_defaults(adain.options.defaults(), engine.weights)):
        path = weights / engine.weights.entry(name).path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"present")
    assert refine.pick_drafter(engine) == "adain"


def test_refine_cli_writes_the_draft_then_replaces_it_with_the_refinement(tmp_path, monkeypatch,
                                                                          capsys):
    import json

    from PIL import Image

    from stylebot.cli import main

    refine_toys.register(monkeypatch)
    monkeypatch.setenv("STYLEBOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STYLEBOT_DEVICE", "cpu")
    monkeypatch.setenv("STYLEBOT_ALLOW_DOWNLOADS", "false")
    monkeypatch.delenv("STYLEBOT_WEIGHTS_DIR", raising=False)
    (tmp_path / "content.png").write_bytes(png_bytes((64, 48), (200, 30, 30)))
    (tmp_path / "style.png").write_bytes(png_bytes((20, 20), (0, 0, 200)))
    out = tmp_path / "out.png"
    code = main(["stylize", str(tmp_path / "content.png"), "--style", str(tmp_path / "style.png"),
                 "--quality", "refine", "--iterations", "3", "-o", str(out), "--json", "--quiet"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    draft, refined = (json.loads(line) for line in stdout.splitlines())
    assert draft["method"] == "hub" and refined["method"] == "gatys"
    assert refined["options"]["iterations"] == 3 and refined["output"] == draft["output"] == str(out)
    draft_pixel = refine_toys.STARTS[0].getpixel((3, 3))
    assert draft_pixel == (55, 225, 225)  # the stand-in draft inverts the photo
    written = Image.open(out).convert("RGB").getpixel((3, 3))
    assert max(abs(a - (b + 128) / 2) for a, b in zip(written, draft_pixel)) <= 1  # refined from it


async def test_refine_a_gatys_preset_with_quality_refine_is_drafted_then_refined(service):
    await service.save_preset(ALICE, "slow", "gatys", {"iterations": "9"},
                              [ImageUpload(png_bytes((20, 20), (0, 0, 200)), "s.png")])
    request = refine_request()
    request.styles, request.preset = [], "slow"
    draft = await service.submit(request)
    assert draft.method == "hub" and isinstance(await draft.wait(), Done)
    assert (await service.result(draft.id)).request.styles[0].filename == "s.png"  # the preset's style
    _, job = await refined(service, draft.id)
    assert job.method == "gatys" and job.options["iterations"] == 9
    with pytest.raises(UserError, match="no option 'quality'"):
        await service.save_preset(ALICE, "kept", "gatys", {"quality": "refine"}, [])
